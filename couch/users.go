package couch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// UsersDBName is the server's user database.
const UsersDBName = "_users"

// Users is the server's `_users` database with what CHT's user layer needs
// besides plain reads and writes: whether a name is a server admin.
type Users struct {
	*DB
	server string
	http   *http.Client
}

// Users returns the server's `_users` database. Writing there needs the
// server-admin credentials of COUCH_URL.
func (c *Client) Users() *Users {
	return &Users{DB: c.DB(UsersDBName), server: c.loc.Server, http: http.DefaultClient}
}

// IsServerAdmin reports whether name is one of the server's admins, read
// from the server configuration (`/_node/_local/_config/admins`, or the
// older `/_config/admins` that PouchDB Server and CouchDB 1 answer).
func (u *Users) IsServerAdmin(ctx context.Context, name string) (bool, error) {
	var lastErr error
	for _, path := range []string{"/_node/_local/_config/admins", "/_config/admins"} {
		admins, status, err := u.getJSON(ctx, path)
		if err != nil {
			lastErr = err
			continue
		}
		if status == http.StatusOK {
			_, ok := admins[name]
			return ok, nil
		}
		lastErr = &Error{What: "read server admins", Status: status, Msg: http.StatusText(status)}
	}
	return false, lastErr
}

func (u *Users) getJSON(ctx context.Context, path string) (map[string]any, int, error) {
	base, err := url.Parse(u.server)
	if err != nil {
		return nil, 0, fmt.Errorf("read server admins: %s", Redact(err.Error(), u.server))
	}
	base.Path = strings.TrimSuffix(base.Path, "/") + path
	var user *url.Userinfo
	user, base.User = base.User, nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("read server admins: %w", err)
	}
	if user != nil {
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	resp, err := u.http.Do(req)
	if err != nil {
		return nil, 0, &Error{What: "read server admins", Msg: Redact(err.Error(), u.server)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, 0, &Error{What: "read server admins", Msg: Redact(err.Error(), u.server)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, nil
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, 0, &Error{What: "read server admins", Status: resp.StatusCode, Msg: "not a JSON object"}
	}
	return out, resp.StatusCode, nil
}

// HasUserForContact reports whether some `_users` doc is the user of
// contact contactID (Mango `_find`; `_users` is small and rarely asked).
func (u *Users) HasUserForContact(ctx context.Context, contactID string) (bool, error) {
	rs := u.k.Find(ctx, map[string]any{"selector": map[string]any{"type": "user", "contact_id": contactID}, "limit": 1})
	defer rs.Close()
	found := rs.Next()
	if err := rs.Err(); err != nil {
		return false, u.wrap("find the user of "+contactID, err)
	}
	return found, nil
}
