package couch_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"sentinel-go/couch"
)

// fakeCouch answers the few write requests the tests make, the way CouchDB
// does, and records the headers of every request.
type fakeCouch struct {
	mu      sync.Mutex
	headers []http.Header
}

func (f *fakeCouch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.headers = append(f.headers, r.Header.Clone())
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimPrefix(r.URL.Path, "/medic")
	switch {
	case r.Method == http.MethodPost && path == "/_bulk_docs":
		var body struct{ Docs []map[string]any }
		_ = json.NewDecoder(r.Body).Decode(&body)
		var out []map[string]any
		for _, d := range body.Docs {
			if d["_id"] == "conflicting" {
				out = append(out, map[string]any{"id": d["_id"], "error": "conflict", "reason": "Document update conflict."})
				continue
			}
			out = append(out, map[string]any{"ok": true, "id": d["_id"], "rev": "2-bulk"})
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPut:
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true,"id":"`+strings.TrimPrefix(path, "/")+`","rev":"2-put"}`)
	case r.Method == http.MethodPost && (path == "/" || path == ""):
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true,"id":"generated","rev":"1-post"}`)
	case r.Method == http.MethodDelete:
		w.Header().Set("ETag", `"3-del"`)
		_, _ = io.WriteString(w, `{"ok":true,"id":"`+strings.TrimPrefix(path, "/")+`","rev":"3-del"}`)
	default:
		_, _ = io.WriteString(w, `{"couchdb":"Welcome"}`)
	}
}

type recorder struct {
	mu    sync.Mutex
	calls [][]couch.Write
}

func (r *recorder) Audit(ws []couch.Write) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, ws)
}

func openFake(t *testing.T) (*couch.Client, *fakeCouch) {
	t.Helper()
	f := &fakeCouch{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	loc, err := couch.ParseURL(strings.Replace(srv.URL, "http://", "http://admin:pass@", 1)+"/medic", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := couch.Open(loc)
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

func TestEveryRequestCarriesTheServiceHeaders(t *testing.T) {
	c, f := openFake(t)
	ctx := context.Background()
	_ = c.Main.Put(ctx, couch.Doc{"_id": "a"})
	_, _ = c.Main.BulkDocs(ctx, []couch.Doc{{"_id": "b"}})
	_, _ = c.DBExists(ctx, "medic-audit")
	_ = c.Reach.Wait(ctx, nil) // the reachability probe goes out too (server marked down first)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.headers) < 4 {
		t.Fatalf("%d requests", len(f.headers))
	}
	for i, h := range f.headers {
		if h.Get("X-Medic-Service") != "sentinel" || h.Get("X-Medic-User") != "sentinel" {
			t.Errorf("request %d headers: %v", i, h)
		}
	}
}

func TestSuccessfulWritesAreReportedToTheAuditor(t *testing.T) {
	c, _ := openFake(t)
	ctx := context.Background()
	rec := &recorder{}
	c.Main.SetAuditor(rec)
	if err := c.Main.Put(ctx, couch.Doc{"_id": "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Main.Create(ctx, couch.Doc{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Main.Delete(ctx, "d", "2-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Main.BulkDocs(ctx, []couch.Doc{{"_id": "b"}, {"_id": "conflicting"}, {"_id": "c", "_deleted": true}}); err != nil {
		t.Fatal(err)
	}
	// Writes to another db of the server are not the main db's.
	if err := c.Sentinel.Put(ctx, couch.Doc{"_id": "a-info"}); err != nil {
		t.Fatal(err)
	}
	want := [][]couch.Write{
		{{ID: "a", Rev: "2-put"}},
		{{ID: "generated", Rev: "1-post"}},
		{{ID: "d", Rev: "3-del", Deleted: true}},
		{{ID: "b", Rev: "2-bulk"}, {ID: "c", Rev: "2-bulk", Deleted: true}},
	}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("audited %v\nwant %v", rec.calls, want)
	}
}

func TestDeferAuditReportsOnceAtFlush(t *testing.T) {
	c, _ := openFake(t)
	rec := &recorder{}
	c.Main.SetAuditor(rec)
	ctx, flush := couch.DeferAudit(context.Background())
	_, _ = c.Main.BulkDocs(ctx, []couch.Doc{{"_id": "p1"}})
	_, _ = c.Main.BulkDocs(ctx, []couch.Doc{{"_id": "r1"}, {"_id": "r2"}})
	if len(rec.calls) != 0 {
		t.Fatalf("reported before the flush: %v", rec.calls)
	}
	flush()
	want := [][]couch.Write{{{ID: "p1", Rev: "2-bulk"}, {ID: "r1", Rev: "2-bulk"}, {ID: "r2", Rev: "2-bulk"}}}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("audited %v\nwant %v", rec.calls, want)
	}
	flush() // nothing more
	if len(rec.calls) != 1 {
		t.Errorf("second flush reported again: %v", rec.calls)
	}
}

func TestUserOf(t *testing.T) {
	for server, want := range map[string]string{
		"http://admin:pass@127.0.0.1:5984": "admin",
		"https://med%40ic:p@host":          "med@ic",
		"http://127.0.0.1:5984":            "",
	} {
		if got := couch.UserOf(server); got != want {
			t.Errorf("UserOf(%q) = %q, want %q", server, got, want)
		}
	}
}
