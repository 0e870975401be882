// Package couchtest gives integration tests fresh databases on the real
// CouchDB-compatible server that `make test` starts (PouchDB Server). The
// server is named by SENTINEL_TEST_COUCH (an admin URL without a database);
// without it the tests that need a server are skipped, so a bare `go test ./...`
// still runs every unit test.
package couchtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"sentinel-go/couch"
)

// dropDelay is how long after a test its databases are deleted.
const dropDelay = 3 * time.Second

// EnvVar names the server for integration tests.
const EnvVar = "SENTINEL_TEST_COUCH"

// ServerURL returns the test server URL or skips the test.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := strings.TrimRight(os.Getenv(EnvVar), "/")
	if u == "" {
		t.Skipf("%s is not set: run `make test` to start PouchDB Server", EnvVar)
	}
	return u
}

// Env is a pair of fresh databases (main and sentinel) with a client on them.
type Env struct {
	Server  string
	MainDB  string
	URL     string // COUCH_URL for the main db
	Client  *couch.Client
	cleanup []string
}

// New creates fresh main and sentinel databases, deleted when the test ends.
func New(t testing.TB) *Env {
	t.Helper()
	return newOn(t, ServerURL(t))
}

// NewPrivate is New on a server of the test's own when the test server is
// PouchDB Server: tests that cut connections in the middle of requests use
// it, because PouchDB Server 4.2 can crash when a longpoll's connection is
// cut (express-pouchdb's changes route reads the results of a cancelled
// feed), which would fail every test after them. On any other server
// (CouchDB) it is New.
func NewPrivate(t testing.TB) *Env {
	t.Helper()
	server := ServerURL(t)
	var welcome map[string]any
	if err := Request(http.MethodGet, server+"/", nil, &welcome); err != nil || welcome["express-pouchdb"] == nil {
		return newOn(t, server)
	}
	return newOn(t, startPouchDB(t))
}

// startPouchDB starts a PouchDB Server with scripts/pouchdb.sh on a free
// port, stopped when the test ends, and returns its admin URL.
func startPouchDB(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "pouchdb.sh")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	state := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "POUCHDB_STATE="+state)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("pouchdb.sh %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	u := run("start", port)
	t.Cleanup(func() { run("stop") })
	return u
}

func newOn(t testing.TB, server string) *Env {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t" + hex.EncodeToString(b)
	e := &Env{Server: server, MainDB: name, URL: server + "/" + name}
	for _, db := range []string{name, name + "-sentinel"} {
		if err := Request(http.MethodPut, server+"/"+db, nil, nil); err != nil {
			t.Fatalf("create db %s: %v", db, err)
		}
		e.cleanup = append(e.cleanup, db)
	}
	t.Cleanup(func() {
		// Deleted a little later, not at once: PouchDB Server 4.2 crashes
		// when a database is deleted while a `_changes` request on it is
		// still computing its first answer, and the daemon a test just
		// stopped may have left one (its client gave up, the server did
		// not). A test binary that exits first leaves them to the server's
		// end (in memory).
		dbs := append([]string(nil), e.cleanup...)
		time.AfterFunc(dropDelay, func() {
			for _, db := range dbs {
				_ = Request(http.MethodDelete, server+"/"+db, nil, nil)
			}
		})
	})
	loc, err := couch.ParseURL(e.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := couch.Open(loc)
	if err != nil {
		t.Fatal(err)
	}
	e.Client = c
	return e
}

// Save writes docs to the main db with _bulk_docs, failing the test on error.
func (e *Env) Save(t testing.TB, db string, docs ...map[string]any) {
	t.Helper()
	var out []map[string]any
	if err := Request(http.MethodPost, e.Server+"/"+db+"/_bulk_docs", map[string]any{"docs": docs}, &out); err != nil {
		t.Fatalf("save: %v", err)
	}
	for _, r := range out {
		if r["error"] != nil {
			t.Fatalf("save %v: %v", r["id"], r["error"])
		}
	}
}

// Get reads a doc, nil when missing.
func (e *Env) Get(t testing.TB, db, id string) map[string]any {
	t.Helper()
	var doc map[string]any
	err := Request(http.MethodGet, e.Server+"/"+db+"/"+id, nil, &doc)
	if err != nil {
		if strings.Contains(err.Error(), "404") {
			return nil
		}
		t.Fatalf("get %s: %v", id, err)
	}
	return doc
}

// Request makes a JSON HTTP request to the test server.
func Request(method, url string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
