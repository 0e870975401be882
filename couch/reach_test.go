package couch

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"

	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

func TestUnreachable(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connection refused", refused, true},
		{"wrapped connection refused", fmt.Errorf("read changes: %w", refused), true},
		{"response cut", io.ErrUnexpectedEOF, true},
		{"our own stop", &url.Error{Op: "Get", URL: "http://x", Err: context.Canceled}, false},
		{"not found", fmt.Errorf("get: %w", ErrNotFound), false},
		{"conflict", ErrConflict, false},
		{"a 500 on one doc", &Error{What: "save", Status: 500, Msg: "boom"}, false},
		{"a 401", &Error{What: "save", Status: 401, Msg: "unauthorized"}, false},
		{"a 503 of the proxy in front", wrapErr("save", &testStatusErr{503}, ""), true},
		{"a network error through wrapErr", wrapErr("save", refused, ""), true},
		{"a cancelled request through wrapErr", wrapErr("save", &url.Error{Err: context.Canceled}, ""), false},
		{"refused credentials from the cookie authenticator", wrapErr("save", &url.Error{Op: "Head", URL: "http://x", Err: &testStatusErr{401}}, ""), false},
	} {
		if got := Unreachable(c.err); got != c.want {
			t.Errorf("%s: Unreachable = %v, want %v", c.name, got, c.want)
		}
	}
}

type testStatusErr struct{ code int }

func (e *testStatusErr) Error() string   { return fmt.Sprintf("status %d", e.code) }
func (e *testStatusErr) HTTPStatus() int { return e.code }

// TestReachOneProbeWakesEveryWaiter: while the server is down, the waiters
// share one probe (not one each), and the probe that finds it back wakes
// them all; the transitions are told once each way.
func TestReachOneProbeWakesEveryWaiter(t *testing.T) {
	var probes atomic.Int32
	back := make(chan struct{})
	r := NewReach(func(ctx context.Context) error {
		probes.Add(1)
		select {
		case <-back:
			return nil
		default:
			return errors.New("connection refused")
		}
	})
	var mu sync.Mutex
	var told []Transition
	r.OnChange(func(tr Transition) { mu.Lock(); told = append(told, tr); mu.Unlock() })
	const waiters = 5
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- r.Wait(context.Background(), io.ErrUnexpectedEOF) }()
	}
	for probes.Load() < 2 { // at least one failed probe after the first
		runtime.Gosched()
	}
	close(back)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !r.Up() {
		t.Fatal("still down after the probe succeeded")
	}
	if n := probes.Load(); n > 4 {
		t.Errorf("%d probes for %d waiters: each waiter probes on its own", n, waiters)
	}
	if len(told) != 2 || told[0].Up || !told[1].Up || told[1].DownFor <= 0 {
		t.Errorf("transitions told: %+v, want down then up (with how long)", told)
	}
}

func TestReachWaitStopsWithItsContext(t *testing.T) {
	r := NewReach(func(ctx context.Context) error { return errors.New("refused") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Wait(ctx, io.ErrUnexpectedEOF) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait returned %v, want the context's error", err)
	}
}

// TestTraceRequests: at trace level (LOG_LEVEL=silly) every request is one
// line with its method, path, status and time, never the credentials, and a
// bulk write says how many of its docs were written.
func TestTraceRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_session" {
			http.SetCookie(w, &http.Cookie{Name: "AuthSession", Value: "x"})
			_, _ = io.WriteString(w, `{"ok":true,"name":"admin","roles":["_admin"]}`)
			return
		}
		if r.URL.Path == "/medic/_bulk_docs" {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `[{"id":"a","rev":"1-x"},{"id":"b","error":"conflict","reason":"Document update conflict."}]`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"not_found","reason":"missing"}`)
	}))
	defer srv.Close()
	loc, err := ParseURL(strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1)+"/medic", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []zerolog.Level{zerolog.TraceLevel, zerolog.DebugLevel} {
		c, err := Open(loc)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		c.TraceRequests(zerolog.New(&buf).Level(level))
		if _, err := c.Main.Get(context.Background(), "doc1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get: %v", err)
		}
		if _, err := c.Main.BulkDocs(context.Background(), []Doc{{"_id": "a"}, {"_id": "b"}}); err != nil {
			t.Fatalf("bulk: %v", err)
		}
		out := buf.String()
		if level != zerolog.TraceLevel {
			if out != "" {
				t.Errorf("at %s: %s", level, out)
			}
			continue
		}
		for _, want := range []string{`"method":"GET"`, `"path":"/medic/doc1"`, `"status":404`, `"took_ms":`,
			`"message":"Bulk write"`, `"written":1,"failed":1`} {
			if !strings.Contains(out, want) {
				t.Errorf("trace %s lacks %s", out, want)
			}
		}
		if strings.Contains(out, "s3cret") {
			t.Errorf("trace shows the password: %s", out)
		}
	}
}

// TestAnswersUncompressed: every request asks for an uncompressed answer
// (PouchDB Server otherwise compresses every feed batch it sends).
func TestAnswersUncompressed(t *testing.T) {
	var got []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+" "+r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/_session" {
			_, _ = io.WriteString(w, `{"ok":true,"name":"admin","roles":["_admin"]}`)
			return
		}
		_, _ = io.WriteString(w, `{"_id":"doc1","_rev":"1-a"}`)
	}))
	defer srv.Close()
	loc, err := ParseURL(strings.Replace(srv.URL, "http://", "http://admin:pw@", 1)+"/medic", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(loc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Main.Get(context.Background(), "doc1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, g := range got {
		if !strings.HasSuffix(g, " identity") {
			t.Errorf("request %q does not ask for an uncompressed answer", g)
		}
	}
}
