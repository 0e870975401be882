package outbound

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvName(t *testing.T) {
	cases := map[string]string{
		"emr":                "SENTINEL_SECRET_EMR",
		"emr-pass":           "SENTINEL_SECRET_EMR_PASS",
		"rapidpro:outgoing":  "SENTINEL_SECRET_RAPIDPRO_OUTGOING",
		"Dhis2.Password_key": "SENTINEL_SECRET_DHIS2_PASSWORD_KEY",
	}
	for in, want := range cases {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secrets.json")
	if err := os.WriteFile(file, []byte(`{"emr": "from-file", "only:file": "f2", "num": 3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SENTINEL_SECRET_EMR": "from-env", FileEnv: file}
	s := EnvSecrets{Getenv: func(k string) string { return env[k] }}
	cases := []struct {
		key, want string
		ok        bool
	}{
		{"emr", "from-env", true},
		{"only:file", "f2", true},
		{"num", "", false},
		{"missing", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		v, ok, err := s.Secret(context.Background(), c.key)
		if err != nil || ok != c.ok || v != c.want {
			t.Errorf("%q: %q %v %v", c.key, v, ok, err)
		}
	}
	env[FileEnv] = filepath.Join(dir, "nope.json")
	if _, ok, err := s.Secret(context.Background(), "x"); ok || err == nil {
		t.Error("a missing secrets file is an error")
	}
}

func TestChain(t *testing.T) {
	failing := secretFunc(func(string) (string, bool, error) { return "", false, errors.New("down") })
	c := Chain{failing, staticSecrets{"a": "1"}}
	if v, ok, err := c.Secret(context.Background(), "a"); v != "1" || !ok || err != nil {
		t.Errorf("%q %v %v", v, ok, err)
	}
	if _, ok, err := c.Secret(context.Background(), "b"); ok || err == nil {
		t.Errorf("%v %v", ok, err)
	}
}

type secretFunc func(string) (string, bool, error)

func (f secretFunc) Secret(_ context.Context, k string) (string, bool, error) { return f(k) }

// The vector was made with Node's crypto: AES-256-CBC, key = "abcdefghij"
// repeated to 32 bytes, IV 00..0f, plaintext "s3cret pässword".
const vaultVector = "000102030405060708090a0b0c0d0e0f:29fe56d05493b0f5a9570df39f5eded35a8c29588614d30b13b8b553e5e2c336"

func TestDecryptVault(t *testing.T) {
	got, err := decryptVault(vaultKey("abcdefghij"), vaultVector)
	if err != nil || got != "s3cret pässword" {
		t.Fatalf("%q %v", got, err)
	}
	for _, bad := range []string{"", "00", "zz:00", "000102030405060708090a0b0c0d0e0f:00", vaultVector[:len(vaultVector)-2]} {
		if _, err := decryptVault(vaultKey("abcdefghij"), bad); err == nil {
			t.Errorf("decrypt %q should fail", bad)
		}
	}
	if _, err := decryptVault(vaultKey("wrong secret"), vaultVector); err == nil {
		t.Error("a wrong key should fail (bad padding)")
	}
	if _, err := decryptVault(vaultKey(""), vaultVector); err == nil {
		t.Error("an empty secret is an error")
	}
}

func TestEncodeURIComponent(t *testing.T) {
	cases := map[string]string{
		"rapidpro:outgoing": "rapidpro%3Aoutgoing",
		"a b/c?d":           "a%20b%2Fc%3Fd",
		"-_.!~*'()":         "-_.!~*'()",
		"é":                 "%C3%A9",
	}
	for in, want := range cases {
		if got := encodeURIComponent(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestVault(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "pass" {
			w.WriteHeader(401)
			return
		}
		switch r.URL.EscapedPath() {
		case "/_node/_local/_config/couch_httpd_auth/secret":
			_, _ = w.Write([]byte(`"abcdefghij"`))
		case "/medic-vault/credential:emr%253Akey", "/medic-vault/credential%3Aemr%253Akey":
			_, _ = w.Write([]byte(`{"_id": "credential:emr%3Akey", "password": "` + vaultVector + `"}`))
		default:
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":"not_found"}`))
		}
	}))
	defer srv.Close()
	server := strings.Replace(srv.URL, "http://", "http://admin:pass@", 1)
	v := &Vault{Server: server, MainDB: "medic"}
	got, ok, err := v.Secret(context.Background(), "emr:key")
	if err != nil || !ok || got != "s3cret pässword" {
		t.Fatalf("%q %v %v", got, ok, err)
	}
	if _, ok, err := v.Secret(context.Background(), "other"); ok || err != nil {
		t.Errorf("missing credential: %v %v", ok, err)
	}
	bad := &Vault{Server: strings.Replace(srv.URL, "http://", "http://admin:wrong@", 1), MainDB: "medic"}
	_, ok, err = bad.Secret(context.Background(), "emr:key")
	if ok || err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("bad credentials: %v %v", ok, err)
	}
}

func TestNewSecretsChain(t *testing.T) {
	t.Setenv(EnvName("a"), "1")
	s := NewSecrets("http://127.0.0.1:1", "medic")
	if v, ok, _ := s.Secret(context.Background(), "a"); !ok || v != "1" {
		t.Error("environment secret not found first")
	}
}
