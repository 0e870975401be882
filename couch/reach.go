package couch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// ProbeInterval is how often an unreachable server is probed: work resumes
// about this long after the server is back, whatever the outage lasted.
const ProbeInterval = time.Second

// probeTimeout bounds one probe, so that a server that holds connections
// open without answering does not stretch the probe interval.
const probeTimeout = 2 * time.Second

// Reach is the daemon's one view of whether the server answers. Every
// request goes through its transport: a connection refused or cut, or a
// gateway error (a proxy in front of a server that is down), marks the
// server down; any other answer marks it up. Components that meet an
// unreachable server wait in Wait instead of backing off each on its own:
// one cheap probe a second finds the server back, and that wakes them all.
type Reach struct {
	mu        sync.Mutex
	down      bool
	since     time.Time // when the server went down
	cause     string
	back      chan struct{} // closed when the server answers again
	probing   bool
	lastProbe time.Time
	probe     func(ctx context.Context) error
	listeners []func(Transition)
}

// Transition is a change of the server's reachability.
type Transition struct {
	// Up is true when the server answers again, false when it went away.
	Up bool
	// Cause is what the failing request met (when going down).
	Cause string
	// DownFor is how long the server was unreachable (when coming back).
	DownFor time.Duration
}

// NewReach returns a Reach that believes the server up; probe checks the
// server once (it runs through the transport, which records the answer).
func NewReach(probe func(ctx context.Context) error) *Reach {
	return &Reach{back: make(chan struct{}), probe: probe}
}

// OnChange adds fn to what is told each transition (logs, metrics, health);
// fn runs without locks held, in the goroutine whose request saw it.
func (r *Reach) OnChange(fn func(Transition)) {
	r.mu.Lock()
	r.listeners = append(r.listeners, fn)
	r.mu.Unlock()
}

// Up reports whether the server answered the last request made to it.
func (r *Reach) Up() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.down
}

// DownSince is when the server went away (zero while it is up).
func (r *Reach) DownSince() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down {
		return time.Time{}
	}
	return r.since
}

// Failed records that a request found the server unreachable.
func (r *Reach) Failed(cause error) {
	r.mu.Lock()
	if r.down {
		r.mu.Unlock()
		return
	}
	r.down, r.since, r.cause = true, time.Now(), causeText(cause)
	r.back = make(chan struct{})
	t := Transition{Cause: r.cause}
	ls := r.listeners
	r.mu.Unlock()
	for _, fn := range ls {
		fn(t)
	}
}

// Answered records that the server answered a request.
func (r *Reach) Answered() {
	r.mu.Lock()
	if !r.down {
		r.mu.Unlock()
		return
	}
	r.down = false
	close(r.back)
	t := Transition{Up: true, DownFor: time.Since(r.since)}
	ls := r.listeners
	r.mu.Unlock()
	for _, fn := range ls {
		fn(t)
	}
}

// Wait returns once the server answers again, or with ctx's error. The
// caller has just met err, an unreachable server (see Unreachable): the
// server is marked down even when the failure came after the transport
// had seen an answer (a response body cut mid-stream). While it is down,
// one waiter at a time probes it every ProbeInterval; the probe's answer
// wakes every waiter at once.
func (r *Reach) Wait(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // stopping: the failure is ours, not the server's
	}
	r.Failed(err)
	for {
		r.mu.Lock()
		if !r.down {
			r.mu.Unlock()
			return nil
		}
		back := r.back
		next := time.Until(r.lastProbe.Add(ProbeInterval))
		probeNow := !r.probing && next <= 0
		if probeNow {
			r.probing = true
		}
		r.mu.Unlock()
		if probeNow {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			perr := r.probe(pctx)
			cancel()
			r.mu.Lock()
			r.probing, r.lastProbe = false, time.Now()
			r.mu.Unlock()
			if perr == nil {
				r.Answered()
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if next <= 0 {
			next = ProbeInterval / 10 // another waiter is probing
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-back:
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Unreachable reports whether err says the server could not be reached (a
// connection refused, reset or cut, a timeout, a gateway error in front of
// it), as opposed to an answer of the server (a 500 on one doc, a 409, a
// 401). Waiting for the server, not retrying with backoff, is the cure.
func Unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce.unreachable
	}
	return transportFailure(err)
}

// transportFailure reports whether err is a failure to exchange with the
// server at all.
func transportFailure(err error) bool {
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

// gatewayStatus reports whether an HTTP status says the server behind a
// proxy (HAProxy in CHT) cannot be reached.
func gatewayStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

func causeText(err error) string {
	if err == nil {
		return "unreachable"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// reachTransport records every exchange with the server in a Reach.
type reachTransport struct {
	base  http.RoundTripper
	reach *Reach
	trace *zerolog.Logger // every request at trace level, when set
}

func (t *reachTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	if t.trace != nil {
		traceRequest(t.trace, req, resp, err, start)
	}
	switch {
	case err != nil:
		// A request our own context ended (a stop, a deadline of ours)
		// says nothing of the server; a caller that waited too long on a
		// server that does not answer calls Wait with that error.
		if req.Context().Err() == nil {
			t.reach.Failed(err)
		}
	case gatewayStatus(resp.StatusCode):
		t.reach.Failed(fmt.Errorf("%s from the server", resp.Status))
	default:
		t.reach.Answered()
	}
	return resp, err
}

// traceRequest logs one exchange with the server: what a sysadmin asks for
// with LOG_LEVEL=silly when the daemon seems to wait on something. The URL
// has no credentials (they travel in a header); the time is to the
// response's headers, not to the end of its body.
func traceRequest(log *zerolog.Logger, req *http.Request, resp *http.Response, err error, start time.Time) {
	ev := log.Trace()
	if !ev.Enabled() {
		return
	}
	ev = ev.Str("method", req.Method).Str("path", req.URL.Path).Str("query", req.URL.RawQuery).
		Int64("took_ms", time.Since(start).Milliseconds())
	if err != nil {
		ev.Err(err).Msg("CouchDB request failed")
		return
	}
	ev.Int("status", resp.StatusCode).Msg("CouchDB request")
}
