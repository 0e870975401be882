package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestParseLevel: the level names CHT's services take (winston's), mapped
// to the nearest level the logger has; anything else is refused.
func TestParseLevel(t *testing.T) {
	cases := []struct {
		in   string
		want zerolog.Level
		ok   bool
	}{
		{"error", zerolog.ErrorLevel, true},
		{"warn", zerolog.WarnLevel, true},
		{"info", zerolog.InfoLevel, true},
		{"http", zerolog.InfoLevel, true},
		{"verbose", zerolog.DebugLevel, true},
		{"debug", zerolog.DebugLevel, true},
		{"silly", zerolog.TraceLevel, true},
		{"trace", zerolog.TraceLevel, true},
		{"DEBUG", zerolog.DebugLevel, true},
		{"loud", 0, false},
		{"", 0, false},
		{"warning", 0, false},
	}
	for _, c := range cases {
		got, err := parseLevel(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parseLevel(%q) = %v, %v; want %v (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestLogLevelFromCHTEnvironment: LOG_LEVEL, CHT's variable, sets the level
// unless --log-level or SENTINEL_LOG_LEVEL does; empty is unset; an unknown
// value stops the start naming the variable.
func TestLogLevelFromCHTEnvironment(t *testing.T) {
	cases := []struct {
		name                string
		logLevel, sentinel  string // "-" leaves the variable unset
		args                []string
		wantInfo, wantDebug bool
	}{
		{"LOG_LEVEL=error", "error", "-", nil, false, false},
		{"LOG_LEVEL=verbose", "verbose", "-", nil, true, true},
		{"LOG_LEVEL empty", "", "-", nil, true, false},
		{"SENTINEL_LOG_LEVEL wins", "error", "info", nil, true, false},
		{"flag wins", "error", "error", []string{"--log-level", "debug"}, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("COUCH_URL", offlineURL)
			t.Setenv("LOG_LEVEL", c.logLevel)
			if c.sentinel != "-" {
				t.Setenv("SENTINEL_LOG_LEVEL", c.sentinel)
			}
			args := append([]string{"--listen", "", "--log-format", "json"}, c.args...)
			code, _, errOut := runFor(t, 1500*time.Millisecond, args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if got := strings.Contains(errOut, `"level":"info"`); got != c.wantInfo {
				t.Errorf("info lines logged: %v, want %v:\n%s", got, c.wantInfo, errOut)
			}
			if got := strings.Contains(errOut, `"level":"debug"`); got != c.wantDebug {
				t.Errorf("debug lines logged: %v, want %v:\n%s", got, c.wantDebug, errOut)
			}
		})
	}
	t.Setenv("COUCH_URL", offlineURL)
	t.Setenv("LOG_LEVEL", "loud")
	code, out, errOut := runFor(t, 3*time.Second, "--listen", "")
	if want := `bad LOG_LEVEL (--log-level) "loud"`; code != 2 || out != "" || !strings.Contains(errOut, want) ||
		!strings.Contains(errOut, "verbose") {
		t.Errorf("LOG_LEVEL=loud: exit %d, stdout %q, stderr %q (want exit 2, %q and the names taken)", code, out, errOut, want)
	}
}

// TestAPIHostFromCHTEnvironment: API_HOST (and API_PORT, default 5988) make
// the daemon wait for CHT API before anything else; a malformed API_PORT
// stops the start.
func TestAPIHostFromCHTEnvironment(t *testing.T) {
	t.Setenv("COUCH_URL", offlineURL)
	t.Setenv("API_HOST", "127.0.0.1")
	code, _, errOut := runFor(t, 1500*time.Millisecond, "--listen", "", "--log-format", "json")
	if code != 0 || !strings.Contains(errOut, `"api":"http://127.0.0.1:5988"`) || !strings.Contains(errOut, "Waiting for CHT API") {
		t.Errorf("API_HOST=127.0.0.1: exit %d, stderr %q (want the wait for http://127.0.0.1:5988 logged)", code, errOut)
	}
	if strings.Contains(errOut, "CouchDB is unreachable") {
		t.Errorf("CouchDB contacted before CHT API answered: %q", errOut)
	}
	t.Setenv("API_PORT", "15988")
	_, _, errOut = runFor(t, 1500*time.Millisecond, "--listen", "", "--log-format", "json")
	if !strings.Contains(errOut, `"api":"http://127.0.0.1:15988"`) {
		t.Errorf("API_PORT=15988 not applied: %q", errOut)
	}
	for _, port := range []string{"http", "0", "70000", "-1"} {
		t.Setenv("API_PORT", port)
		code, _, errOut = runFor(t, 3*time.Second, "--listen", "")
		if code != 2 || !strings.Contains(errOut, "API_PORT") {
			t.Errorf("API_PORT=%s: exit %d, stderr %q (want exit 2 naming API_PORT)", port, code, errOut)
		}
	}
	t.Setenv("API_PORT", "5988")
	t.Setenv("API_HOST", "")
	_, _, errOut = runFor(t, 1500*time.Millisecond, "--listen", "", "--log-format", "json")
	if strings.Contains(errOut, "Waiting for CHT API") {
		t.Errorf("API_HOST empty: waited for API: %q", errOut)
	}
}

// TestHealthcheck: `sentinel healthcheck` is the probe of an image without
// a shell or curl: exit 0 when /healthz of --listen (SENTINEL_LISTEN, an
// all-interfaces address asked on loopback) answers 200, else 1.
func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte("the body\n"))
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	code, out, errOut := runCLI(t, "healthcheck", "--listen", addr)
	if code != 0 || !strings.Contains(out, "the body") {
		t.Errorf("healthy: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Setenv("SENTINEL_LISTEN", "0.0.0.0:"+port)
	if code, out, errOut = runCLI(t, "healthcheck"); code != 0 {
		t.Errorf("SENTINEL_LISTEN=0.0.0.0:%s: exit %d, stdout %q, stderr %q", port, code, out, errOut)
	}
	status = http.StatusServiceUnavailable
	if code, _, errOut = runCLI(t, "healthcheck", "--listen", addr); code != 1 || !strings.Contains(errOut, "503") || !strings.Contains(errOut, "the body") {
		t.Errorf("unhealthy: exit %d, stderr %q (want exit 1 with the status and the body)", code, errOut)
	}
	srv.Close()
	if code, _, errOut = runCLI(t, "healthcheck", "--listen", addr); code != 1 || errOut == "" {
		t.Errorf("nothing listening: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut = runCLI(t, "healthcheck", "--listen", ""); code != 2 || !strings.Contains(errOut, "--listen") {
		t.Errorf("--listen empty: exit %d, stderr %q (want a usage error)", code, errOut)
	}
	if code, _, _ = runCLI(t, "healthcheck", "stray"); code != 2 {
		t.Errorf("a stray argument: exit %d, want 2", code)
	}
}
