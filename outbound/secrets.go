package outbound

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"sentinel-go/couch"
)

// SecretStore looks secrets up by key (auth.password_key, auth.value_key).
type SecretStore interface {
	// Secret returns the secret stored under key; ok is false when there is
	// none. Errors never contain secrets.
	Secret(ctx context.Context, key string) (value string, ok bool, err error)
}

// EnvPrefix prefixes the environment variables holding secrets.
const EnvPrefix = "SENTINEL_SECRET_"

// FileEnv names the environment variable giving the path of a JSON secrets
// file: {"<key>": "<secret>", ...}.
const FileEnv = "SENTINEL_SECRETS_FILE"

// EnvName is the environment variable holding the secret of key:
// SENTINEL_SECRET_ + the key upper-cased, every character other than A-Z
// and 0-9 replaced by "_" ("emr-password" → SENTINEL_SECRET_EMR_PASSWORD).
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	for _, r := range strings.ToUpper(key) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// EnvSecrets is the daemon's own secret store: the environment variable
// EnvName(key), else the key in the JSON file named by SENTINEL_SECRETS_FILE
// (read on every lookup, so edits apply without a restart).
type EnvSecrets struct {
	Getenv   func(string) string          // nil: os.Getenv
	ReadFile func(string) ([]byte, error) // nil: os.ReadFile
}

// Secret implements SecretStore.
func (e EnvSecrets) Secret(_ context.Context, key string) (string, bool, error) {
	getenv, readFile := e.Getenv, e.ReadFile
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if key == "" {
		return "", false, nil
	}
	if v := getenv(EnvName(key)); v != "" {
		return v, true, nil
	}
	path := getenv(FileEnv)
	if path == "" {
		return "", false, nil
	}
	data, err := readFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", false, fmt.Errorf("read secrets file %s: %w", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return "", false, fmt.Errorf("secrets file %s is not a JSON object of strings", path)
	}
	if v, ok := m[key].(string); ok {
		return v, true, nil
	}
	return "", false, nil
}

// Chain tries each store in turn; the first that has the key wins. An error
// is returned only when no store has it.
type Chain []SecretStore

// Secret implements SecretStore.
func (c Chain) Secret(ctx context.Context, key string) (string, bool, error) {
	var errs []error
	for _, s := range c {
		if s == nil {
			continue
		}
		v, ok, err := s.Secret(ctx, key)
		if ok {
			return v, true, nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return "", false, errors.Join(errs...)
}

// Vault reads CHT's credential store: the database <main db>-vault, one doc
// per key, `_id` "credential:" + encodeURIComponent(key), field `password`
// "<hex IV>:<hex ciphertext>", AES-256-CBC with PKCS#7 padding, the key being
// CouchDB's couch_httpd_auth/secret repeated to 32 bytes (sms.md §6.1).
// It is read on every lookup.
type Vault struct {
	Server string // scheme://user:pass@host:port, as couch.Location.Server
	MainDB string
	HTTP   *http.Client // nil: a client with a 10 s timeout
}

// Secret implements SecretStore.
func (v *Vault) Secret(ctx context.Context, key string) (string, bool, error) {
	if v == nil || v.Server == "" || v.MainDB == "" || key == "" {
		return "", false, nil
	}
	id := "credential:" + encodeURIComponent(key)
	var doc map[string]any
	found, err := v.getJSON(ctx, "/"+url.PathEscape(v.MainDB+"-vault")+"/"+url.PathEscape(id), &doc)
	if err != nil {
		return "", false, fmt.Errorf("read CHT vault: %w", err)
	}
	if !found {
		return "", false, nil
	}
	stored, _ := doc["password"].(string)
	if stored == "" {
		return "", false, fmt.Errorf("CHT vault doc %s has no password", id)
	}
	secret, err := v.couchSecret(ctx)
	if err != nil {
		return "", false, err
	}
	plain, err := decryptVault(vaultKey(secret), stored)
	if err != nil {
		return "", false, fmt.Errorf("decrypt CHT vault doc %s: %w", id, err)
	}
	return plain, true, nil
}

// couchSecret is CouchDB's couch_httpd_auth/secret (chttpd_auth/secret on
// servers that moved it there).
func (v *Vault) couchSecret(ctx context.Context) (string, error) {
	for _, section := range []string{"couch_httpd_auth", "chttpd_auth"} {
		var s any
		found, err := v.getJSON(ctx, "/_node/_local/_config/"+section+"/secret", &s)
		if err != nil {
			return "", fmt.Errorf("read CouchDB secret: %w", err)
		}
		if str, ok := s.(string); found && ok && str != "" {
			return str, nil
		}
	}
	return "", errors.New("CouchDB has no couch_httpd_auth/secret: cannot decrypt the CHT vault")
}

// getJSON GETs path on the server; found is false on 404.
func (v *Vault) getJSON(ctx context.Context, path string, out any) (found bool, err error) {
	body, found, err := couchGet(ctx, v.HTTP, v.Server, path)
	if err != nil || !found {
		return false, err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return false, fmt.Errorf("%s: invalid JSON", path)
	}
	return true, nil
}

// couchGet GETs path on a CouchDB server given as scheme://user:pass@host
// (credentials sent as basic auth, never put in errors); found is false on
// 404.
func couchGet(ctx context.Context, client *http.Client, server, path string) (body []byte, found bool, err error) {
	u, err := url.Parse(strings.TrimRight(server, "/") + path)
	if err != nil {
		return nil, false, errors.New("invalid CouchDB URL")
	}
	user := u.User
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, false, errors.New("invalid CouchDB URL")
	}
	if user != nil {
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	req.Header.Set("Accept", "application/json")
	couch.SetServiceHeaders(req)
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, errorText(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, false, errorText(err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, false, fmt.Errorf("GET %s answered status %d", u.Path, resp.StatusCode)
	}
	return body, true, nil
}

// vaultKey repeats the CouchDB secret until it has 32 bytes.
func vaultKey(secret string) []byte {
	if secret == "" {
		return nil
	}
	k := []byte(secret)
	for len(k) < 32 {
		k = append(k, secret...)
	}
	return k[:32]
}

func decryptVault(key []byte, stored string) (string, error) {
	if len(key) != 32 {
		return "", errors.New("empty CouchDB secret")
	}
	ivHex, ctHex, ok := strings.Cut(stored, ":")
	if !ok {
		return "", errors.New("not <iv>:<ciphertext>")
	}
	iv, err1 := hex.DecodeString(ivHex)
	ct, err2 := hex.DecodeString(ctHex)
	if err1 != nil || err2 != nil || len(iv) != aes.BlockSize || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return "", errors.New("malformed iv or ciphertext")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	n := int(plain[len(plain)-1])
	if n == 0 || n > aes.BlockSize || n > len(plain) {
		return "", errors.New("bad padding (wrong CouchDB secret?)")
	}
	for _, b := range plain[len(plain)-n:] {
		if int(b) != n {
			return "", errors.New("bad padding (wrong CouchDB secret?)")
		}
	}
	return string(plain[:len(plain)-n]), nil
}

// encodeURIComponent escapes as JavaScript's encodeURIComponent: everything
// but A-Z a-z 0-9 - _ . ! ~ * ' ( ).
func encodeURIComponent(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&0xf])
	}
	return b.String()
}

// NewSecrets is the secret store of a daemon: environment variables (and
// the SENTINEL_SECRETS_FILE), then CHT's vault (<main db>-vault) on server.
func NewSecrets(server, mainDB string) SecretStore {
	return Chain{EnvSecrets{}, &Vault{Server: server, MainDB: mainDB}}
}

// DefaultTimeout bounds every HTTP request of a push (and of a vault read).
const DefaultTimeout = 10 * time.Second
