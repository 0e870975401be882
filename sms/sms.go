// Package sms is the optional SMS component of the daemon (spec/sms.md
// §4-§8): an HTTP API for CHT Gateway (`/api/sms`) and the RapidPro and
// Africa's Talking webhooks, which turn incoming SMS into data_records that
// the daemon's feed then runs the transitions on; and an opt-in sending loop
// that hands pending messages to the configured push aggregator and polls
// RapidPro for delivery statuses.
//
// It reads app_settings from the `settings` doc of the main database itself
// (refreshed when older than a few seconds), so it never depends on the
// daemon's config machinery. Provider credentials come from a
// outbound.SecretStore (environment, secrets file, then CHT's vault), read
// on every use and never logged.
package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/outbound"
	"sentinel-go/smsparse"
)

// Outgoing services of settings.sms.outgoing_service.
const (
	ServiceGateway        = "medic-gateway"
	ServiceRapidPro       = "rapidpro"
	ServiceAfricasTalking = "africas-talking"
)

// Options configure a Service. Zero values take the defaults given.
type Options struct {
	// CouchURL is COUCH_URL: the main database with credentials.
	CouchURL string
	Log      zerolog.Logger
	// Secrets holds provider credentials; nil: outbound.NewSecrets on the
	// CouchDB server of CouchURL.
	Secrets outbound.SecretStore
	// HTTPClient makes the provider calls; nil: a client with RequestTimeout.
	HTTPClient *http.Client
	// RequestTimeout bounds each provider request (default 30 s).
	RequestTimeout time.Duration
	// SettingsMaxAge is how long a read of the settings doc is reused
	// (default 5 s) when Settings is nil.
	SettingsMaxAge time.Duration
	// Settings returns the settings in force (the daemon's config, built
	// and swapped in at each reload); nil, or a nil answer before the first
	// load, means the service reads the settings doc itself.
	Settings func() *config.Settings
	// AuthCacheTTL is how long a successful `_session` check is reused
	// (default 30 s).
	AuthCacheTTL time.Duration
	// MaxBody limits request bodies (default 1 MiB).
	MaxBody int64
	// Location is the zone of date values in SMS forms; nil: time.Local.
	Location *time.Location
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Fence, when set, is asked right before each message is handed to an
	// aggregator: an error (this instance is no longer the active one)
	// ends the send run, the message left pending.
	Fence func() error

	// AfricasTalkingURL and AfricasTalkingSandboxURL are the messaging
	// endpoints (defaults: the live and sandbox hosts' /version1/messaging).
	AfricasTalkingURL, AfricasTalkingSandboxURL string

	// SendInterval is the period of the sending loop (default 60 s; the
	// first run comes one interval after start, as in the reference).
	SendInterval time.Duration
	// FirstSendDelay overrides the wait before the first run (0: SendInterval).
	FirstSendDelay time.Duration
	// RetryBase and RetryMax bound the per-message backoff after a
	// retryable failure (defaults 1 min and 1 h).
	RetryBase, RetryMax time.Duration
	// MaxAttempts is the number of retryable failures after which a message
	// is given up and set `failed` (default 20).
	MaxAttempts int
	// PollMaxAge stops RapidPro status polling of a message whose state has
	// not changed for this long (default 72 h).
	PollMaxAge time.Duration
}

// Default AT endpoints (public API documentation).
const (
	atLiveURL    = "https://api.africastalking.com/version1/messaging"
	atSandboxURL = "https://api.sandbox.africastalking.com/version1/messaging"
)

// Service is the shared state of the SMS server and sender: the main
// database, the settings cache, credentials and the provider client.
type Service struct {
	opts    Options
	log     zerolog.Logger
	db      *couch.DB
	client  *couch.Client
	server  string // CouchDB server URL without credentials, for _session
	secrets outbound.SecretStore
	http    *http.Client

	settingsMu sync.Mutex
	current    *snapshot

	viewsMu sync.Mutex
	viewsOK bool

	auth *authCache
}

// New connects to the database of opts.CouchURL (lazily: nothing is
// requested until the first use).
func New(opts Options) (*Service, error) {
	loc, err := couch.ParseURL(opts.CouchURL, "")
	if err != nil {
		return nil, err
	}
	c, err := couch.Open(loc)
	if err != nil {
		return nil, fmt.Errorf("open CouchDB: %w", err)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.RequestTimeout}
	}
	if opts.SettingsMaxAge <= 0 {
		opts.SettingsMaxAge = 5 * time.Second
	}
	if opts.AuthCacheTTL <= 0 {
		opts.AuthCacheTTL = 30 * time.Second
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AfricasTalkingURL == "" {
		opts.AfricasTalkingURL = atLiveURL
	}
	if opts.AfricasTalkingSandboxURL == "" {
		opts.AfricasTalkingSandboxURL = atSandboxURL
	}
	if opts.SendInterval <= 0 {
		opts.SendInterval = time.Minute
	}
	if opts.FirstSendDelay <= 0 {
		opts.FirstSendDelay = opts.SendInterval
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Minute
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 20
	}
	if opts.PollMaxAge <= 0 {
		opts.PollMaxAge = 72 * time.Hour
	}
	server, err := url.Parse(loc.Server)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	server.User = nil
	if opts.Secrets == nil {
		opts.Secrets = outbound.NewSecrets(loc.Server, loc.MainDB)
	}
	s := &Service{
		opts: opts, log: opts.Log.With().Str("component", "sms").Logger(),
		db: c.DB(loc.MainDB), client: c, server: server.String(),
		secrets: opts.Secrets, http: opts.HTTPClient,
		auth: newAuthCache(opts.AuthCacheTTL),
	}
	return s, nil
}

// Close releases the database client.
func (s *Service) Close() error { return s.client.Close() }

// snapshot is one read of app_settings with what the SMS paths derive from it.
type snapshot struct {
	read     time.Time
	settings *config.Settings
	forms    *smsparse.Forms
}

// outgoingService is settings.sms.outgoing_service; CHT Gateway when
// settings.sms is absent (spec §4.3).
func (sn *snapshot) outgoingService() string {
	return sn.settings.String("sms.outgoing_service", ServiceGateway)
}

// settings returns app_settings, re-read when older than SettingsMaxAge.
// A failed re-read keeps the previous snapshot (logged); with none, the
// error is returned.
func (s *Service) settings(ctx context.Context) (*snapshot, error) {
	s.settingsMu.Lock()
	defer s.settingsMu.Unlock()
	if s.opts.Settings != nil {
		if cur := s.opts.Settings(); cur != nil && cur.JSON != nil {
			if s.current != nil && s.current.settings == cur {
				return s.current, nil
			}
			forms, err := smsparse.ParseForms(cur.JSON)
			if err != nil {
				return nil, fmt.Errorf("settings forms: %w", err)
			}
			s.current = &snapshot{settings: cur, forms: forms}
			return s.current, nil
		}
	}
	now := s.opts.Now()
	if s.current != nil && now.Sub(s.current.read) < s.opts.SettingsMaxAge {
		return s.current, nil
	}
	sn, err := s.readSettings(ctx)
	if err != nil {
		if s.current != nil {
			s.log.Warn().Err(err).Msg("Could not refresh settings; keeping the previous ones")
			s.current.read = now
			return s.current, nil
		}
		return nil, err
	}
	sn.read = now
	s.current = sn
	return sn, nil
}

func (s *Service) readSettings(ctx context.Context) (*snapshot, error) {
	raw, err := s.db.GetRaw(ctx, "settings")
	if err != nil && !errors.Is(err, couch.ErrNotFound) {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	var doc struct {
		Settings json.RawMessage `json:"settings"`
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("decode settings: %w", err)
		}
	}
	if len(doc.Settings) == 0 || string(doc.Settings) == "null" {
		doc.Settings = json.RawMessage("{}")
	}
	var m map[string]any
	if err := json.Unmarshal(doc.Settings, &m); err != nil {
		return nil, fmt.Errorf("decode settings: %w", err)
	}
	forms, err := smsparse.ParseForms(doc.Settings)
	if err != nil {
		return nil, fmt.Errorf("settings forms: %w", err)
	}
	return &snapshot{settings: config.NewSettings(m), forms: forms}, nil
}
