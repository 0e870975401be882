package sms

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"sentinel-go/couch"
)

// Handler returns the SMS HTTP API:
//
//	GET|POST /api/sms                                   CHT Gateway (basic auth + can_access_gateway_api)
//	POST /api/v2/sms/rapidpro/incoming-messages         RapidPro webhook (Authorization: Token <rapidpro:incoming>)
//	POST /api/v1/sms/radpidpro/incoming-messages        the same (the reference's old, misspelt path)
//	POST /api/v1/sms/africastalking/incoming-messages   Africa's Talking incoming (?key=<africastalking.com:incoming>)
//	POST /api/v1/sms/africastalking/delivery-reports    Africa's Talking delivery reports (same key)
//
// The webhooks authenticate with the provider's shared secret (spec §6.4,
// §7.2): the providers cannot send CouchDB credentials in the same header.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/sms", s.requireGatewayUser(http.HandlerFunc(s.handleGateway)))
	mux.HandleFunc("POST /api/v2/sms/rapidpro/incoming-messages", s.handleRapidProIncoming)
	mux.HandleFunc("POST /api/v1/sms/radpidpro/incoming-messages", s.handleRapidProIncoming)
	mux.HandleFunc("POST /api/v1/sms/africastalking/incoming-messages", s.handleATIncoming)
	mux.HandleFunc("POST /api/v1/sms/africastalking/delivery-reports", s.handleATDelivery)
	return s.limitBody(mux)
}

// Serve serves Handler on addr until ctx is cancelled, then shuts down
// gracefully (in-flight requests get 5 s).
func (s *Service) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("SMS API listen %s: %w", addr, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on an open listener (tests use port 0).
func (s *Service) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.log.Info().Str("addr", ln.Addr().String()).Msg("SMS API listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("SMS API: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shut)
	<-errc
	if err != nil {
		return fmt.Errorf("SMS API shutdown: %w", err)
	}
	s.log.Info().Msg("SMS API stopped")
	return nil
}

// limitBody caps every request body at MaxBody.
func (s *Service) limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
		h.ServeHTTP(w, r)
	})
}

// readBody reads the (size-limited) body, answering 413 or 400 itself when
// it cannot.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "could not read request body")
		return nil, false
	}
	return b, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg})
}

// requireGatewayUser checks HTTP basic auth against the CouchDB server's
// users (`_session`) and the role list settings.permissions.
// can_access_gateway_api (server admins always pass): 401 for missing or
// wrong credentials, 403 for a user without the role.
func (s *Service) requireGatewayUser(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="sentinel-go SMS"`)
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		roles, err := s.authenticate(r.Context(), user, pass)
		if errors.Is(err, errBadCredentials) {
			w.Header().Set("WWW-Authenticate", `Basic realm="sentinel-go SMS"`)
			writeError(w, http.StatusUnauthorized, "name or password is incorrect")
			return
		}
		if err != nil {
			s.log.Error().Err(err).Msg("Could not check credentials")
			writeError(w, http.StatusServiceUnavailable, "could not check credentials")
			return
		}
		sn, err := s.settings(r.Context())
		if err != nil {
			s.log.Error().Err(err).Msg("Could not read settings")
			writeError(w, http.StatusServiceUnavailable, "could not read settings")
			return
		}
		if !allowed(roles, sn.settings.Get("permissions.can_access_gateway_api")) {
			s.log.Warn().Str("user", user).Msg("User lacks can_access_gateway_api")
			writeError(w, http.StatusForbidden, "insufficient privileges")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// allowed reports whether roles include _admin or a role of the permission
// list.
func allowed(roles []string, permitted any) bool {
	if slices.Contains(roles, "_admin") {
		return true
	}
	list, _ := permitted.([]any)
	for _, p := range list {
		if ps, ok := p.(string); ok && slices.Contains(roles, ps) {
			return true
		}
	}
	return false
}

var errBadCredentials = errors.New("name or password is incorrect")

// authCache remembers successful `_session` checks briefly, keyed by a hash
// of the credentials (never the password itself).
type authCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[[32]byte]authEntry
}

type authEntry struct {
	roles   []string
	expires time.Time
}

func newAuthCache(ttl time.Duration) *authCache {
	return &authCache{ttl: ttl, entries: map[[32]byte]authEntry{}}
}

func credKey(user, pass string) [32]byte {
	return sha256.Sum256([]byte(user + "\x00" + pass))
}

// authenticate returns the roles of user, asking CouchDB `_session` with
// the given credentials unless a recent answer is cached.
func (s *Service) authenticate(ctx context.Context, user, pass string) ([]string, error) {
	key := credKey(user, pass)
	now := s.opts.Now()
	c := s.auth
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.roles, nil
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.server, "/")+"/_session", nil)
	if err != nil {
		return nil, fmt.Errorf("session request: %w", err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Accept", "application/json")
	couch.SetServiceHeaders(req)
	resp, err := s.sessionClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("session request: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return nil, errBadCredentials
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("session request: HTTP %d", resp.StatusCode)
	}
	var sess struct {
		UserCtx struct {
			Name  *string  `json:"name"`
			Roles []string `json:"roles"`
		} `json:"userCtx"`
	}
	if err := json.Unmarshal(body, &sess); err != nil {
		return nil, fmt.Errorf("session response: %w", err)
	}
	if sess.UserCtx.Name == nil || *sess.UserCtx.Name != user {
		// CouchDB answers 200 with an anonymous context when the
		// credentials were not used.
		return nil, errBadCredentials
	}
	c.mu.Lock()
	if len(c.entries) > 1000 {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
	}
	c.entries[key] = authEntry{roles: sess.UserCtx.Roles, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return sess.UserCtx.Roles, nil
}

// sessionClient is a client for CouchDB itself: the provider client may be
// a test double.
func (s *Service) sessionClient() *http.Client { return http.DefaultClient }
