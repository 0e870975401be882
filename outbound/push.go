package outbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/infodoc"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
)

// DocStore is the sentinel db as pushes use it (info docs, task docs).
// *couch.DB implements it.
type DocStore interface {
	Get(ctx context.Context, id string) (map[string]any, error)
	Put(ctx context.Context, doc map[string]any) error
}

var _ DocStore = (*couch.DB)(nil)

// Pusher sends pushes for the transition and the outbound job.
type Pusher struct {
	Sentinel DocStore
	JS       *jsexpr.Sandbox
	Log      zerolog.Logger
	// Now stamps completed_tasks.
	Now time.Time
	// Secrets: nil means environment variables only (EnvSecrets).
	Secrets SecretStore
	// HTTP: nil means a client that follows no redirects.
	HTTP *http.Client
	// Timeout bounds each request (default DefaultTimeout).
	Timeout time.Duration
	// Fence, when set, is asked right before each request: an error (this
	// instance is no longer the active one) sends nothing (ErrFenced).
	Fence func() error
}

// ErrFenced is a push not sent because Fence said this instance may not
// send any more.
var ErrFenced = errors.New("not sent: this instance is not the active one")

// Result of one push attempt.
type Result int

// Results.
const (
	// Failed: not delivered; the push must be (or stay) queued.
	Failed Result = iota
	// Sent: delivered and recorded in completed_tasks.
	Sent
	// Duplicate: the same payload was already delivered; nothing sent.
	Duplicate
)

func (r Result) String() string {
	switch r {
	case Sent:
		return "sent"
	case Duplicate:
		return "duplicate"
	}
	return "failed"
}

// Done reports whether the push needs no retry.
func (r Result) Done() bool { return r == Sent || r == Duplicate }

// Send builds the payload of doc for push, skips it when the info doc's
// last completed push of that name has the same hash, POSTs it and records
// it in completed_tasks. Failures are logged (doc id and reason, never
// credentials) and returned with Failed.
func (p *Pusher) Send(ctx context.Context, push *Push, docID string, doc map[string]any) (Result, error) {
	res, err := p.send(ctx, push, docID, doc)
	if err != nil {
		p.Log.Error().Str("doc_id", docID).Str("push", push.Name).Str("reason", oneLine(err.Error())).
			Msgf("Failed to push %s to %s: %s", docID, push.Name, oneLine(err.Error()))
	}
	return res, err
}

func (p *Pusher) send(ctx context.Context, push *Push, docID string, doc map[string]any) (Result, error) {
	if p.Sentinel == nil {
		return Failed, errors.New("no sentinel database")
	}
	body, hash, err := push.Prepare(ctx, p.JS, doc)
	if err != nil {
		return Failed, err
	}
	info, err := p.Sentinel.Get(ctx, infodoc.ID(docID))
	if err != nil && !errors.Is(err, couch.ErrNotFound) {
		return Failed, fmt.Errorf("read info doc: %w", err)
	}
	if LastHash(info, push.Name) == hash {
		p.Log.Debug().Str("doc_id", docID).Str("push", push.Name).Msg("Payload already pushed: not sent again")
		return Duplicate, nil
	}
	if err := p.post(ctx, push.Destination, body); err != nil {
		return Failed, err
	}
	p.Log.Info().Str("doc_id", docID).Str("push", push.Name).Msgf("Pushed %s to %s", docID, push.Name)
	entry := completedEntry(push.Name, p.now(), hash)
	if err := AppendCompleted(ctx, p.Sentinel, docID, entry); err != nil {
		// Delivered: queueing it would send it twice. Log only.
		p.Log.Error().Str("doc_id", docID).Str("push", push.Name).Err(err).
			Msgf("Pushed %s to %s but could not record it in completed_tasks", docID, push.Name)
	}
	return Sent, nil
}

// Prepare builds the body of doc's payload for push and its hash (what
// completed_tasks records): a mapping error, or a push that cannot be sent
// (no destination), is an error.
func (push *Push) Prepare(ctx context.Context, js *jsexpr.Sandbox, doc map[string]any) (body []byte, hash string, err error) {
	payload, err := push.Payload(ctx, js, doc)
	if err != nil {
		return nil, "", err
	}
	if push.Destination == nil {
		return nil, "", errors.New("no destination")
	}
	body, err = SortedJSON(payload)
	if err != nil {
		return nil, "", fmt.Errorf("payload: %w", err)
	}
	hash, _ = Hash(payload)
	return body, hash, nil
}

func (p *Pusher) now() time.Time {
	if p.Now.IsZero() {
		return time.Now()
	}
	return p.Now
}

// LastHash is the hash of the last completed_tasks entry of info with type
// "outbound" and name name ("" when none).
func LastHash(info map[string]any, name string) string {
	tasks := jsv.Slice(info["completed_tasks"])
	for i := len(tasks) - 1; i >= 0; i-- {
		t := jsv.Map(tasks[i])
		if t != nil && t["type"] == "outbound" && t["name"] == name {
			h, _ := t["hash"].(string)
			return h
		}
	}
	return ""
}

// completedEntry is the completed_tasks record of a delivered push.
func completedEntry(name string, at time.Time, hash string) map[string]any {
	return map[string]any{"type": "outbound", "name": name, "timestamp": float64(at.UnixMilli()), "hash": hash}
}

// AppendCompleted appends entry to the info doc's completed_tasks
// (read-modify-write, retried on 409, every other field kept; the info doc
// is created when missing).
func AppendCompleted(ctx context.Context, store DocStore, docID string, entry map[string]any) error {
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		info, err := store.Get(ctx, infodoc.ID(docID))
		if errors.Is(err, couch.ErrNotFound) {
			info = infodoc.New(docID)
		} else if err != nil {
			return fmt.Errorf("read info doc: %w", err)
		}
		tasks := jsv.Slice(info["completed_tasks"])
		info["completed_tasks"] = append(append([]any{}, tasks...), entry)
		err = store.Put(ctx, info)
		if err == nil {
			return nil
		}
		if !errors.Is(err, couch.ErrConflict) {
			return fmt.Errorf("save info doc: %w", err)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt*20) * time.Millisecond):
		}
	}
	return fmt.Errorf("save info doc: %w", lastErr)
}

// joinURL joins base_url and path with one "/" between them.
func joinURL(base, path string) (*url.URL, error) {
	s := strings.TrimRight(strings.TrimSpace(base), "/")
	if p := strings.TrimLeft(path, "/"); p != "" {
		s += "/" + p
	} else if path != "" {
		s += "/"
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("invalid destination URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("destination URL %s is not an http(s) URL", redact(u))
	}
	return u, nil
}

// redact is u for logs: no credentials, no query (a token may be there).
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	return c.String()
}

func (p *Pusher) client() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return noRedirects
}

// noRedirects answers a redirect as the non-2xx it is: a POST is not
// replayed elsewhere (nor are credentials).
var noRedirects = &http.Client{Transport: pushTransport(), CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// pushTransport is http.DefaultTransport keeping enough idle connections
// per host for the queue's workers: with the default 2, three workers
// pushing to one destination closed and reopened a connection on most
// requests (a TCP and, on https, a TLS handshake each time).
func pushTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = 16
	return t
}

func (p *Pusher) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

func (p *Pusher) secret(ctx context.Context, key, what string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("auth has no %s", what)
	}
	s := p.Secrets
	if s == nil {
		s = EnvSecrets{}
	}
	v, ok, err := s.Secret(ctx, key)
	if err != nil && !ok {
		return "", fmt.Errorf("secret %q: %w", key, err)
	}
	if !ok {
		return "", fmt.Errorf("no secret stored for %s %q (set %s, a %s file entry, or a CHT vault credential)", what, key, EnvName(key), FileEnv)
	}
	return v, nil
}

// post sends the JSON body to the destination with its auth.
func (p *Pusher) post(ctx context.Context, d *Destination, body []byte) error {
	if p.Fence != nil {
		if err := p.Fence(); err != nil {
			return fmt.Errorf("%w: %w", ErrFenced, err)
		}
	}
	if d == nil {
		return errors.New("no destination")
	}
	u, err := joinURL(d.BaseURL, d.Path)
	if err != nil {
		return err
	}
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("Accept", "application/json")
	if user := u.User; user != nil {
		// Credentials written in base_url: send them as basic auth.
		pw, _ := user.Password()
		header.Set("Authorization", basicAuth(user.Username(), pw))
		u.User = nil
	}
	if a := d.Auth; a != nil {
		switch strings.ToLower(a.Type) {
		case "basic":
			pw, err := p.secret(ctx, a.PasswordKey, "password_key")
			if err != nil {
				return err
			}
			header.Set("Authorization", basicAuth(a.Username, pw))
		case "header":
			if !strings.EqualFold(a.Name, "authorization") {
				return fmt.Errorf("header auth: only the Authorization header is supported, not %q", a.Name)
			}
			v, err := p.secret(ctx, a.ValueKey, "value_key")
			if err != nil {
				return err
			}
			header.Set("Authorization", v)
		case "muso-sih":
			token, err := p.musoLogin(ctx, d, a)
			if err != nil {
				return err
			}
			q := u.Query()
			q.Set("token", token)
			u.RawQuery = q.Encode()
		default:
			return fmt.Errorf("unknown auth type %q", a.Type)
		}
	}
	status, respBody, err := p.do(ctx, http.MethodPost, u, header, body)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("error response from %s: status %d: %s", redact(u), status, snippet(respBody))
	}
	return nil
}

// musoLogin is the muso-sih auth: POST login/password as a form to
// base_url + auth.path, expect JSON {statut: 200, data: {username_token}}.
func (p *Pusher) musoLogin(ctx context.Context, d *Destination, a *Auth) (string, error) {
	pw, err := p.secret(ctx, a.PasswordKey, "password_key")
	if err != nil {
		return "", err
	}
	u, err := joinURL(d.BaseURL, a.Path)
	if err != nil {
		return "", fmt.Errorf("muso-sih login: %w", err)
	}
	u.User = nil
	form := url.Values{"login": {a.Username}, "password": {pw}}
	header := http.Header{}
	header.Set("Content-Type", "application/x-www-form-urlencoded")
	header.Set("Accept", "application/json")
	status, respBody, err := p.do(ctx, http.MethodPost, u, header, []byte(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("muso-sih login: %w", err)
	}
	if status < 200 || status > 299 {
		return "", fmt.Errorf("muso-sih login: error response from %s: status %d", redact(u), status)
	}
	var res map[string]any
	if err := json.Unmarshal(respBody, &res); err != nil {
		return "", fmt.Errorf("muso-sih login: the answer is not JSON")
	}
	if !jsv.LooseEqual(res["statut"], float64(200)) {
		return "", fmt.Errorf("muso-sih login failed: statut %s", jsv.String(res["statut"]))
	}
	token, _ := jsv.Get(res, "data.username_token")
	if t, ok := token.(string); ok && t != "" {
		return t, nil
	}
	if t, ok := token.(float64); ok {
		return jsv.NumberString(t), nil
	}
	return "", errors.New("muso-sih login: no data.username_token in the answer")
}

// do makes one request bounded by the push timeout and returns the status
// and (the start of) the body. Errors name the URL without credentials.
func (p *Pusher) do(ctx context.Context, method string, u *url.URL, header http.Header, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: invalid request", method, redact(u))
	}
	req.Header = header
	resp, err := p.client().Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%s %s: no answer within %s", method, redact(u), p.timeout())
		}
		return 0, nil, fmt.Errorf("%s %s: %w", method, redact(u), errorText(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, data, nil
}

// errorText is err without the URL that net/http puts in front (it may
// hold a token in its query).
func errorText(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	return err
}

func basicAuth(user, pw string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pw)
	return r.Header.Get("Authorization")
}

// snippet is the start of a response body on one line.
func snippet(b []byte) string {
	s := oneLine(string(b))
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// TaskID is the id of a doc's outbound queue in the sentinel db.
func TaskID(docID string) string { return "task:outbound:" + docID }

// newTask is a new task:outbound doc of docID, without its queue.
func newTask(docID string, now time.Time) map[string]any {
	return map[string]any{"_id": TaskID(docID), "type": "task:outbound", "created": float64(now.UnixMilli()), "doc_id": docID}
}

// warnNotQueued logs the push names a task that already exists did not get
// (the reference adds none to an existing task).
func warnNotQueued(log zerolog.Logger, docID string, missing []string) {
	if len(missing) > 0 {
		log.Warn().Str("doc_id", docID).Strs("not_queued", missing).
			Msgf("An outbound task already exists for %s: %s not added to its queue", docID, strings.Join(missing, ", "))
	}
}

// anyStrings is names as a JSON array.
func anyStrings(names []string) []any {
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = n
	}
	return out
}

// TaskPrefix starts the id of every outbound queue doc.
const TaskPrefix = "task:outbound:"

// EnsureTask queues names for docID: creates
// {_id: task:outbound:<docID>, type: task:outbound, created, doc_id, queue}
// unless the task exists, which is then left unchanged (reference
// behaviour: names that became relevant later are not added; logged).
func EnsureTask(ctx context.Context, store DocStore, log zerolog.Logger, docID string, names []string, now time.Time) error {
	id := TaskID(docID)
	for attempt := 0; attempt < 3; attempt++ {
		existing, err := store.Get(ctx, id)
		if err == nil {
			queued := map[string]bool{}
			for _, n := range jsv.Slice(existing["queue"]) {
				if s, ok := n.(string); ok {
					queued[s] = true
				}
			}
			var missing []string
			for _, n := range names {
				if !queued[n] {
					missing = append(missing, n)
				}
			}
			warnNotQueued(log, docID, missing)
			return nil
		}
		if !errors.Is(err, couch.ErrNotFound) {
			return fmt.Errorf("read outbound task: %w", err)
		}
		task := newTask(docID, now)
		task["queue"] = anyStrings(names)
		err = store.Put(ctx, task)
		if err == nil {
			log.Info().Str("doc_id", docID).Strs("queue", names).Msgf("Queued outbound pushes of %s: %s", docID, strings.Join(names, ", "))
			return nil
		}
		if !errors.Is(err, couch.ErrConflict) {
			return fmt.Errorf("create outbound task: %w", err)
		}
	}
	// Not wrapped: the pipeline reads ErrConflict as a conflict on the doc itself.
	return fmt.Errorf("create outbound task %s: gave up after repeated conflicts", id)
}
