// Package couch holds all CouchDB access of the daemon: the connection, plain
// document reads and writes, the `_changes` feed, the checkpoint, info docs and
// the lookups answered by the daemon's own design document.
//
// It speaks to any CouchDB 2/3 or PouchDB Server through kivik v4. Documents are
// JSON values decoded into map[string]any (numbers as float64), the shape every
// other package of the daemon works with.
package couch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	kivik "github.com/go-kivik/kivik/v4"
	"github.com/go-kivik/kivik/v4/couchdb" // the CouchDB driver
	"github.com/rs/zerolog"
)

// Doc is a CouchDB document as decoded JSON.
type Doc = map[string]any

// ErrNotFound is returned when a document does not exist (or is deleted).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write loses a revision race (HTTP 409).
var ErrConflict = errors.New("document update conflict")

// Config says where the databases are.
type Config struct {
	// URL is COUCH_URL: the main database with credentials, e.g.
	// http://admin:pass@127.0.0.1:5984/medic.
	URL string
	// SentinelDB is SENTINEL_DB; empty means "<main db>-sentinel".
	SentinelDB string
}

// Location is a parsed COUCH_URL.
type Location struct {
	Server     string // scheme://user:pass@host:port (with credentials)
	MainDB     string
	SentinelDB string
}

// ParseURL validates COUCH_URL and derives the database names. A URL without a
// database path, with another scheme than http(s), or without a host is rejected
// with a message that never contains the password.
func ParseURL(raw, sentinelDB string) (Location, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return Location{}, fmt.Errorf("COUCH_URL is not a valid URL: %s", Redact(err.Error(), raw))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Location{}, fmt.Errorf("COUCH_URL must start with http:// or https:// (got %q)", RedactURL(raw))
	}
	if u.Host == "" {
		return Location{}, fmt.Errorf("COUCH_URL has no host: %q", RedactURL(raw))
	}
	db := strings.Trim(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return Location{}, fmt.Errorf("COUCH_URL must name the main database, e.g. http://admin:pass@localhost:5984/medic (got %q)", RedactURL(raw))
	}
	if sentinelDB == "" {
		sentinelDB = db + "-sentinel"
	}
	server := *u
	server.Path, server.RawPath, server.RawQuery, server.Fragment = "", "", "", ""
	return Location{Server: server.String(), MainDB: db, SentinelDB: sentinelDB}, nil
}

// RedactURL returns raw with any password replaced by "xxxxx", for logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Redact removes the password found in rawURL from text.
func Redact(text, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return text
	}
	if pw, has := u.User.Password(); has && pw != "" {
		text = strings.ReplaceAll(text, pw, "xxxxx")
		text = strings.ReplaceAll(text, url.QueryEscape(pw), "xxxxx")
	}
	return text
}

// Client is a connection to the server holding the main and sentinel dbs.
type Client struct {
	loc       Location
	kc        *kivik.Client
	http      *http.Client
	transport *reachTransport
	Main      *DB
	Sentinel  *DB
	// Reach says whether the server answers; every request of the client
	// updates it.
	Reach *Reach
}

// DefaultRequestTimeout bounds every request but the `_changes` longpolls
// (which the feed bounds itself): a server that accepts connections and
// never answers must not hold a loop forever.
const DefaultRequestTimeout = 60 * time.Second

// Open connects (lazily: no request is made) to the server in loc.
func Open(loc Location) (*Client, error) {
	return OpenTimeout(loc, DefaultRequestTimeout)
}

// OpenTimeout is Open with another bound on each request; it must exceed
// the longpoll timeout of any feed read through the client.
func OpenTimeout(loc Location, timeout time.Duration) (*Client, error) {
	c := &Client{loc: loc}
	c.Reach = NewReach(c.probe)
	c.transport = &reachTransport{base: http.DefaultTransport, reach: c.Reach}
	c.http = &http.Client{Transport: headerTransport{c.transport}, Timeout: timeout}
	// Request bodies are not gzipped: the daemon runs next to its server,
	// where compressing every bulk write costs both ends more CPU than the
	// bytes it saves.
	kc, err := kivik.New("couch", loc.Server, couchdb.OptionNoRequestCompression(), couchdb.OptionHTTPClient(c.http))
	if err != nil {
		return nil, fmt.Errorf("open CouchDB client: %s", Redact(err.Error(), loc.Server))
	}
	c.kc = kc
	c.Main = &DB{name: loc.MainDB, k: kc.DB(loc.MainDB), server: loc.Server, tr: c.transport}
	c.Sentinel = &DB{name: loc.SentinelDB, k: kc.DB(loc.SentinelDB), server: loc.Server, tr: c.transport}
	return c, nil
}

// TraceRequests logs every request to the server at trace level on log
// (method, path, status, time to the response). Call it before the client
// is used.
func (c *Client) TraceRequests(log zerolog.Logger) {
	c.transport.trace = &log
}

// Location returns where the client points.
func (c *Client) Location() Location { return c.loc }

// DB returns a handle on another database of the same server.
func (c *Client) DB(name string) *DB {
	return &DB{name: name, k: c.kc.DB(name), server: c.loc.Server, tr: c.transport}
}

// Ping checks that the server answers and the main database exists.
func (c *Client) Ping(ctx context.Context) error {
	ok, err := c.kc.DBExists(ctx, c.loc.MainDB)
	if err != nil {
		return c.wrap("reach CouchDB", err)
	}
	if !ok {
		return fmt.Errorf("main database %q: %w", c.loc.MainDB, ErrDatabaseMissing)
	}
	return nil
}

// ErrDatabaseMissing is Ping's answer when the server answers but the main
// database does not exist (a typo in COUCH_URL, a database not created yet).
var ErrDatabaseMissing = errors.New("the database does not exist on the server")

// Refused reports whether err is the server refusing the credentials of
// COUCH_URL (401) or their rights (403).
func Refused(err error) bool {
	var ce *Error
	return errors.As(err, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden)
}

// EnsureSentinelDB creates the sentinel database when it is missing.
func (c *Client) EnsureSentinelDB(ctx context.Context) error {
	ok, err := c.kc.DBExists(ctx, c.loc.SentinelDB)
	if err != nil {
		return c.wrap("check sentinel db", err)
	}
	if ok {
		return nil
	}
	if err := c.kc.CreateDB(ctx, c.loc.SentinelDB); err != nil && kivik.HTTPStatus(err) != http.StatusPreconditionFailed {
		return c.wrap("create sentinel db "+c.loc.SentinelDB, err)
	}
	return nil
}

// Close releases the client.
func (c *Client) Close() error { return c.kc.Close() }

func (c *Client) wrap(what string, err error) error {
	return wrapErr(what, err, c.loc.Server)
}

// wrapErr classifies kivik errors into ErrNotFound / ErrConflict and removes
// credentials from the message.
func wrapErr(what string, err error, server string) error {
	if err == nil {
		return nil
	}
	switch kivik.HTTPStatus(err) {
	case http.StatusNotFound:
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case http.StatusConflict:
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	status := kivik.HTTPStatus(err)
	return &Error{What: what, Status: status, Msg: Redact(err.Error(), server),
		unreachable: unreachableStatus(err, status)}
}

// unreachableStatus: a gateway error, or a transport failure that carries
// no answer of the server (kivik reports those as 502, or 500 when it
// knows nothing; a 401 from the cookie authenticator also comes as a
// transport error, with its status).
func unreachableStatus(err error, status int) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	return gatewayStatus(status) || (status == 0 || status == http.StatusInternalServerError) && transportFailure(err)
}

// Error is a database failure other than not-found or conflict: network
// errors, 5xx, bad requests. Its text never holds credentials.
type Error struct {
	What   string
	Status int
	Msg    string
	// unreachable: the server could not be reached (see Unreachable).
	unreachable bool
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.What, e.Msg) }

// Temporary reports whether retrying later may succeed (network, 5xx).
func (e *Error) Temporary() bool { return e.Status == 0 || e.Status >= 500 }

// probe asks the server's root for any answer: the cheapest request there
// is, which needs no credentials and no database.
func (c *Client) probe(ctx context.Context) error {
	u, err := url.Parse(c.loc.Server)
	if err != nil {
		return err
	}
	u.User, u.Path = nil, "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if gatewayStatus(resp.StatusCode) {
		return fmt.Errorf("probe: %s", resp.Status)
	}
	return nil
}

// AllDBs lists the server's databases (needs server-admin rights).
func (c *Client) AllDBs(ctx context.Context) ([]string, error) {
	dbs, err := c.kc.AllDBs(ctx)
	if err != nil {
		return nil, c.wrap("list databases", err)
	}
	return dbs, nil
}

// RevGeneration is the generation of a revision ("3-abc" → 3), -1 when rev
// is not a revision.
func RevGeneration(rev string) int {
	n, _, ok := strings.Cut(rev, "-")
	if !ok {
		return -1
	}
	g, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return g
}
