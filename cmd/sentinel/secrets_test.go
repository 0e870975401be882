package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
)

// Credentials planted by plantSecrets: the password of COUCH_URL, SMS and
// outbound credentials in SENTINEL_SECRET_<KEY> variables, and one in the
// SENTINEL_SECRETS_FILE.
const (
	couchSecret    = "s3cretPassw0rd"
	rapidProSecret = "rp-T0ken-s3cret"
	atSecret       = "at-ApiKey-s3cret"
	outboundSecret = "emr-Passw0rd-s3cret"
	fileSecret     = "fromTheFile-s3cret"
)

// plantSecrets sets every kind of credential the daemon reads from its
// environment.
func plantSecrets(t *testing.T) {
	t.Helper()
	t.Setenv("COUCH_URL", "http://admin:"+couchSecret+"@127.0.0.1:1/medic")
	t.Setenv("SENTINEL_SECRET_RAPIDPRO_OUTGOING", rapidProSecret)
	t.Setenv("SENTINEL_SECRET_AFRICASTALKING_COM_OUTGOING", atSecret)
	t.Setenv("SENTINEL_SECRET_EMR_PASSWORD", outboundSecret)
	file := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(file, []byte(`{"rapidpro:incoming": "`+fileSecret+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SENTINEL_SECRETS_FILE", file)
}

// leaked returns the planted credentials that out contains.
func leaked(out string) []string {
	var found []string
	for _, s := range []string{couchSecret, rapidProSecret, atSecret, outboundSecret, fileSecret} {
		if strings.Contains(out, s) {
			found = append(found, s)
		}
	}
	return found
}

// TestNoCredentialInOutput plants every kind of credential and runs every
// subcommand with --help, --version, bad flags, bad arguments and invalid
// values from the environment: no output may contain one, and usage errors
// exit 2 without contacting anything (the server named does not exist: the
// daemon would retry it forever).
func TestNoCredentialInOutput(t *testing.T) {
	plantSecrets(t)
	settings := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(settings, []byte(`{"transitions": {"mark_for_outbound": true}, "outbound": {"emr": {
		"relevant_to": "doc.type === 'data_record'", "destination": {"base_url": "https://emr.example.org", "path": "/x",
		"auth": {"type": "basic", "username": "u", "password_key": "emr-password"}}, "mapping": {"id": "doc._id"}}},
		"sms": {"outgoing_service": "rapidpro", "rapidpro": {"url": "https://rapidpro.example.org"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		env  map[string]string
		code int
	}{
		{[]string{"--help"}, nil, 0},
		{[]string{"-h"}, nil, 0},
		{[]string{"--version"}, nil, 0},
		{[]string{"--no-such-flag"}, nil, 2},
		{[]string{"chek-config", "bad.json"}, nil, 2},
		{[]string{"stray"}, nil, 2},
		{[]string{"--log-level", "debug", "extra", "args"}, nil, 2},
		{[]string{"--log-level", "debug"}, map[string]string{"SENTINEL_JOB_INTERVAL": "soon"}, 2},
		{[]string{"--log-level", "debug"}, map[string]string{"SENTINEL_LOG_FORMAT": "xml"}, 2},
		{[]string{"--log-level", "debug"}, map[string]string{"SENTINEL_EXPR_TIMEOUT": "0"}, 2},
		{[]string{"explain"}, nil, 2},
		{[]string{"explain", "--help"}, nil, 0},
		{[]string{"explain", "--no-such-flag", "x"}, nil, 2},
		{[]string{"explain", "doc"}, nil, 1}, // the server is unreachable
		{[]string{"explain", "--json", "doc"}, nil, 1},
		{[]string{"check-config"}, nil, 2},
		{[]string{"check-config", "--help"}, nil, 0},
		{[]string{"check-config", "--no-such-flag"}, nil, 2},
		{[]string{"check-config", settings}, nil, 0},
		{[]string{"check-config", "--json", settings}, nil, 0},
	}
	for _, c := range cases {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		var out, errOut couchtest.LogBuffer // written by the daemon's goroutines
		code := make(chan int, 1)
		go func() { code <- run(context.Background(), c.args, &out, &errOut) }()
		select {
		case got := <-code:
			if got != c.code {
				t.Errorf("%v %v: exit %d, want %d (stderr %q)", c.env, c.args, got, c.code, errOut.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v %v: still running after 5 s (the daemon was started?)", c.env, c.args)
		}
		if all := out.String() + errOut.String(); leaked(all) != nil {
			t.Errorf("%v %v: output shows %v:\n%s", c.env, c.args, leaked(all), all)
		}
		for k := range c.env {
			os.Unsetenv(k) // t.Setenv restores them at the end; the next case must not see them
		}
	}
}

// fakeCouch answers the CouchDB root as a server would and every other
// request with status and body: a missing database (404) or refused
// credentials (401).
func fakeCouch(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/" {
			_, _ = w.Write([]byte(`{"couchdb":"Welcome","version":"3.3.3"}`))
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestNoCredentialInDaemonLogs runs the daemon at debug level, with the SMS
// API and sender on, through starts that fail (server unreachable,
// database missing, credentials refused) and sends the SMS API requests
// with wrong credentials: no log line may contain a planted credential.
func TestNoCredentialInDaemonLogs(t *testing.T) {
	plantSecrets(t)
	missing := fakeCouch(t, http.StatusNotFound, `{"error":"not_found","reason":"Database does not exist."}`)
	refused := fakeCouch(t, http.StatusUnauthorized, `{"error":"unauthorized","reason":"Name or password is incorrect."}`)
	for _, c := range []struct{ name, server string }{
		{"unreachable", "http://admin:" + couchSecret + "@127.0.0.1:1"},
		{"db-missing", withAuth(missing)},
		{"credentials-refused", withAuth(refused)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("COUCH_URL", c.server+"/medic")
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			smsAddr := ln.Addr().String()
			ln.Close()
			go func() {
				// Wrong credentials of each kind, once the API is up.
				time.Sleep(700 * time.Millisecond)
				for _, path := range []string{"/api/sms", "/api/v2/sms/rapidpro/incoming-messages",
					"/api/v1/sms/africastalking/incoming-messages?key=wrong"} {
					req, _ := http.NewRequest(http.MethodPost, "http://"+smsAddr+path, strings.NewReader(`{}`))
					req.SetBasicAuth("gateway", "wrong")
					req.Header.Set("Authorization", "Token wrong")
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
				}
			}()
			code, out, errOut := runFor(t, 2*time.Second, "--log-level", "debug", "--log-format", "json",
				"--listen", "", "--sms-listen", smsAddr, "--sms-send")
			if code != 0 || !strings.Contains(errOut, `"level":"debug"`) && !strings.Contains(errOut, `"level":"error"`) {
				t.Errorf("exit %d, log:\n%s", code, errOut)
			}
			if all := out + errOut; leaked(all) != nil {
				t.Errorf("the log shows %v:\n%s", leaked(all), all)
			}
			if testing.Verbose() {
				t.Log(errOut)
			}
		})
	}
}

// withAuth puts the planted COUCH_URL password into a server URL.
func withAuth(server string) string {
	return strings.Replace(server, "http://", "http://admin:"+couchSecret+"@", 1)
}
