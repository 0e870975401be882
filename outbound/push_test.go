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
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsv"
)

// memDB is an in-memory sentinel db; conflicts makes the next Puts fail with 409.
type memDB struct {
	mu        sync.Mutex
	docs      map[string]map[string]any
	seq       int
	conflicts int
}

func newMemDB() *memDB { return &memDB{docs: map[string]map[string]any{}} }

func (m *memDB) Get(_ context.Context, id string) (map[string]any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", id, couch.ErrNotFound)
	}
	return jsv.CloneMap(d), nil
}

func (m *memDB) Put(_ context.Context, doc map[string]any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, _ := doc["_id"].(string)
	if m.conflicts > 0 {
		m.conflicts--
		return fmt.Errorf("put %s: %w", id, couch.ErrConflict)
	}
	cur, exists := m.docs[id]
	if exists && cur["_rev"] != doc["_rev"] || !exists && doc["_rev"] != nil {
		return fmt.Errorf("put %s: %w", id, couch.ErrConflict)
	}
	m.seq++
	doc["_rev"] = strconv.Itoa(m.seq) + "-x"
	m.docs[id] = jsv.CloneMap(doc)
	return nil
}

// sink records requests.
type sink struct {
	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
}

func (s *sink) record(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	s.bodies = append(s.bodies, string(b))
	return string(b)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

type staticSecrets map[string]string

func (s staticSecrets) Secret(_ context.Context, key string) (string, bool, error) {
	v, ok := s[key]
	return v, ok, nil
}

func newServer(t *testing.T, s *sink) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		w.WriteHeader(200)
	})
	mux.HandleFunc("/basic", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		u, p, ok := r.BasicAuth()
		if !ok || u != "cht" || p != "s3cret" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(201)
	})
	mux.HandleFunc("/header", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		if r.Header.Get("Authorization") != "Token abc" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(200)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		w.WriteHeader(500)
		_, _ = w.Write([]byte("{\"error\": 500,\n \"some\": \"error response\"}"))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("login") == "muso" && r.PostForm.Get("password") == "s3cret" {
			_, _ = w.Write([]byte(`{"statut": 200, "data": {"username_token": "tok123"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"statut": 401}`))
	})
	mux.HandleFunc("/muso", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		if r.URL.Query().Get("token") != "tok123" {
			w.WriteHeader(403)
			return
		}
		w.WriteHeader(200)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func pushTo(t *testing.T, base, path string, auth map[string]any) *Push {
	t.Helper()
	dest := map[string]any{"base_url": base, "path": path}
	if auth != nil {
		dest["auth"] = auth
	}
	cfg := mustParse(t, map[string]any{"test": map[string]any{"relevant_to": "true", "destination": dest,
		"mapping": map[string]any{"id": "doc._id", "rev": "doc._rev", "note": "doc.note"}}})
	return cfg.Get("test")
}

func TestSendWithAuth(t *testing.T) {
	s := &sink{}
	srv := newServer(t, s)
	secrets := staticSecrets{"emr": "s3cret", "emr_token": "Token abc"}
	doc := map[string]any{"_id": "r1", "_rev": "1-a", "note": "<b> & é"}
	cases := []struct {
		name     string
		path     string
		auth     map[string]any
		want     Result
		wantErr  string
		requests int
	}{
		{"no auth", "/ok", nil, Sent, "", 1},
		{"basic", "/basic", map[string]any{"type": "basic", "username": "cht", "password_key": "emr"}, Sent, "", 1},
		{"basic, wrong secret key", "/basic", map[string]any{"type": "basic", "username": "cht", "password_key": "missing"}, Failed, `no secret stored for password_key "missing"`, 0},
		{"header", "/header", map[string]any{"type": "header", "name": "authorization", "value_key": "emr_token"}, Sent, "", 1},
		{"header, other name", "/header", map[string]any{"type": "header", "name": "X-Api-Key", "value_key": "emr_token"}, Failed, "only the Authorization header", 0},
		{"muso-sih", "/muso", map[string]any{"type": "muso-sih", "username": "muso", "password_key": "emr", "path": "/login"}, Sent, "", 1},
		{"muso-sih, refused login", "/muso", map[string]any{"type": "muso-sih", "username": "other", "password_key": "emr", "path": "/login"}, Failed, "muso-sih login failed", 0},
		{"unknown auth", "/ok", map[string]any{"type": "oauth"}, Failed, "unknown auth type", 0},
		{"error response", "/broken", nil, Failed, "error response from " + srv.URL + "/broken: status 500: {\"error\": 500, \"some\": \"error response\"}", 1},
		{"redirect not followed", "/redirect", nil, Failed, "status 302", 1},
		{"not found", "/nowhere", nil, Failed, "status 404", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := s.count()
			db := newMemDB()
			var logs bytes.Buffer
			p := &Pusher{Sentinel: db, Secrets: secrets, Log: zerolog.New(&logs), Now: time.UnixMilli(1714550401000)}
			res, err := p.Send(context.Background(), pushTo(t, srv.URL, c.path, c.auth), "r1", doc)
			if res != c.want {
				t.Fatalf("result %v (%v), want %v", res, err, c.want)
			}
			if got := s.count() - before; got != c.requests {
				t.Errorf("%d requests, want %d", got, c.requests)
			}
			info, _ := db.Get(context.Background(), "r1-info")
			if c.want == Sent {
				if err != nil {
					t.Fatal(err)
				}
				tasks := jsv.Slice(info["completed_tasks"])
				if len(tasks) != 1 {
					t.Fatalf("completed_tasks = %v", info["completed_tasks"])
				}
				entry := tasks[0].(map[string]any)
				hash, _ := Hash(map[string]any{"id": "r1", "rev": "1-a", "note": "<b> & é"})
				if entry["type"] != "outbound" || entry["name"] != "test" || entry["timestamp"] != 1714550401000.0 || entry["hash"] != hash {
					t.Errorf("entry = %v", entry)
				}
				last := s.bodies[len(s.bodies)-1]
				if last != `{"id":"r1","note":"<b> & é","rev":"1-a"}` {
					t.Errorf("body = %s", last)
				}
				ct := s.reqs[len(s.reqs)-1].Header.Get("Content-Type")
				if ct != "application/json" {
					t.Errorf("content type %q", ct)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("err = %v, want %q", err, c.wantErr)
			}
			if info != nil {
				t.Errorf("info doc written on failure: %v", info)
			}
			line := logs.String()
			if strings.Count(strings.TrimSpace(line), "\n") != 0 || !strings.Contains(line, "r1") || !strings.Contains(line, "Failed to push r1 to test") {
				t.Errorf("log = %q", line)
			}
			if c.want == Failed && c.path == "/broken" && (!strings.Contains(line, "500") || !strings.Contains(line, "error response")) {
				t.Errorf("log = %q", line)
			}
			for _, secret := range []string{"s3cret", "Token abc", "tok123"} {
				if strings.Contains(line, secret) {
					t.Errorf("log holds a secret: %q", line)
				}
			}
		})
	}
}

func TestSendCredentialsInBaseURL(t *testing.T) {
	var gotUser, gotPass string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		w.WriteHeader(500)
	}))
	defer srv.Close()
	base := strings.Replace(srv.URL, "http://", "http://user:pa55@", 1)
	var logs bytes.Buffer
	p := &Pusher{Sentinel: newMemDB(), Log: zerolog.New(&logs)}
	_, err := p.Send(context.Background(), pushTo(t, base, "x", nil), "r1", map[string]any{"_id": "r1", "_rev": "1", "note": 1.0})
	if gotUser != "user" || gotPass != "pa55" {
		t.Errorf("auth %q %q", gotUser, gotPass)
	}
	if err == nil || strings.Contains(err.Error(), "pa55") || strings.Contains(logs.String(), "pa55") {
		t.Errorf("err %v, logs %s", err, logs.String())
	}
}

func TestSendConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	p := &Pusher{Sentinel: newMemDB(), Log: zerolog.New(&logs)}
	res, err := p.Send(context.Background(), pushTo(t, "http://"+addr, "/x", nil), "report1", map[string]any{"_id": "report1", "_rev": "1", "note": 1.0})
	if res != Failed || err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("%v %v", res, err)
	}
	if !strings.Contains(logs.String(), "report1") || !strings.Contains(logs.String(), "refused") {
		t.Errorf("log = %s", logs.String())
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p := &Pusher{Sentinel: newMemDB(), Log: zerolog.Nop(), Timeout: 100 * time.Millisecond}
	start := time.Now()
	res, err := p.Send(context.Background(), pushTo(t, srv.URL, "/slow", nil), "r1", map[string]any{"_id": "r1", "_rev": "1", "note": 1.0})
	if res != Failed || err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("%v %v", res, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("timeout not applied")
	}
}

func TestSendDuplicateAndChanged(t *testing.T) {
	s := &sink{}
	srv := newServer(t, s)
	db := newMemDB()
	// Other fields of the info doc are kept; conflicts are retried.
	_ = db.Put(context.Background(), map[string]any{"_id": "r1-info", "type": "info", "doc_id": "r1",
		"transitions": map[string]any{"x": map[string]any{"ok": true}}})
	p := &Pusher{Sentinel: db, Log: zerolog.Nop()}
	pu := pushTo(t, srv.URL, "/ok", nil)
	doc := map[string]any{"_id": "r1", "_rev": "1-a", "note": "n"}
	db.conflicts = 2
	if res, err := p.Send(context.Background(), pu, "r1", doc); res != Sent {
		t.Fatal(res, err)
	}
	if res, _ := p.Send(context.Background(), pu, "r1", doc); res != Duplicate {
		t.Fatalf("same payload: %v", res)
	}
	if s.count() != 1 {
		t.Fatalf("%d requests", s.count())
	}
	doc["note"] = "changed"
	if res, _ := p.Send(context.Background(), pu, "r1", doc); res != Sent {
		t.Fatalf("changed payload: %v", res)
	}
	// Back to the first payload: only the last entry counts, so it is sent.
	doc["note"] = "n"
	if res, _ := p.Send(context.Background(), pu, "r1", doc); res != Sent {
		t.Fatalf("reverted payload: %v", res)
	}
	info, _ := db.Get(context.Background(), "r1-info")
	if n := len(jsv.Slice(info["completed_tasks"])); n != 3 || info["transitions"] == nil || info["doc_id"] != "r1" {
		t.Errorf("info = %v", info)
	}
}

func TestLastHash(t *testing.T) {
	info := map[string]any{"completed_tasks": []any{
		map[string]any{"type": "outbound", "name": "a", "hash": "h1"},
		map[string]any{"type": "outbound", "name": "b", "hash": "h2"},
		map[string]any{"type": "other", "name": "a", "hash": "h3"},
		"junk",
		map[string]any{"type": "outbound", "name": "a", "hash": "h4"},
	}}
	if LastHash(info, "a") != "h4" || LastHash(info, "b") != "h2" || LastHash(info, "c") != "" || LastHash(nil, "a") != "" {
		t.Error("LastHash")
	}
}

func TestEnsureTask(t *testing.T) {
	db := newMemDB()
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	now := time.UnixMilli(1714550401000)
	if err := EnsureTask(context.Background(), db, log, "r1", []string{"a", "b"}, now); err != nil {
		t.Fatal(err)
	}
	task, _ := db.Get(context.Background(), "task:outbound:r1")
	want := map[string]any{"_id": "task:outbound:r1", "_rev": task["_rev"], "type": "task:outbound", "created": 1714550401000.0,
		"doc_id": "r1", "queue": []any{"a", "b"}}
	if fmt.Sprint(task) != fmt.Sprint(want) {
		t.Errorf("task = %v", task)
	}
	// An existing task is left unchanged, with a warning.
	if err := EnsureTask(context.Background(), db, log, "r1", []string{"a", "c"}, now); err != nil {
		t.Fatal(err)
	}
	again, _ := db.Get(context.Background(), "task:outbound:r1")
	if again["_rev"] != task["_rev"] || !strings.Contains(logs.String(), "c not added") {
		t.Errorf("task %v, logs %s", again, logs.String())
	}
}

func TestJoinURL(t *testing.T) {
	cases := map[[2]string]string{
		{"http://h.org", "/api"}:     "http://h.org/api",
		{"http://h.org/", "/api"}:    "http://h.org/api",
		{"http://h.org//", "api"}:    "http://h.org/api",
		{"http://h.org/base", "x/y"}: "http://h.org/base/x/y",
		{"http://h.org", ""}:         "http://h.org",
	}
	for in, want := range cases {
		u, err := joinURL(in[0], in[1])
		if err != nil || u.String() != want {
			t.Errorf("joinURL(%q, %q) = %v, %v; want %s", in[0], in[1], u, err, want)
		}
	}
	if _, err := joinURL("ftp://h", "/x"); err == nil {
		t.Error("ftp must be rejected")
	}
}

func TestPayloadJSONMatchesBody(t *testing.T) {
	// The body is valid JSON that decodes to the payload.
	s := &sink{}
	srv := newServer(t, s)
	p := &Pusher{Sentinel: newMemDB(), Log: zerolog.Nop()}
	doc := map[string]any{"_id": "r1", "_rev": "1-a", "note": map[string]any{"z": []any{1.5, nil, "\u2028"}, "a": true}}
	if res, err := p.Send(context.Background(), pushTo(t, srv.URL, "/ok", nil), "r1", doc); res != Sent {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(s.bodies[0]), &got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got["note"]) != fmt.Sprint(doc["note"]) {
		t.Errorf("body %s", s.bodies[0])
	}
}

// TestSendFenced: a pusher whose fence refuses (this instance lost its
// lease) sends nothing.
func TestSendFenced(t *testing.T) {
	s := &sink{}
	srv := newServer(t, s)
	lost := errors.New("lost the lease")
	p := &Pusher{Sentinel: newMemDB(), Log: zerolog.Nop(), Fence: func() error { return lost }}
	res, err := p.Send(context.Background(), pushTo(t, srv.URL, "/x", nil), "r1", map[string]any{"_id": "r1", "_rev": "1", "note": 1.0})
	if res != Failed || !errors.Is(err, ErrFenced) || !errors.Is(err, lost) {
		t.Fatalf("%v %v", res, err)
	}
	if n := s.count(); n != 0 {
		t.Fatalf("%d requests sent past the fence", n)
	}
}
