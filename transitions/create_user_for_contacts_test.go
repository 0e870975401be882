package transitions

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"sentinel-go/memdb"
)

// fakeUsers is `_users` in memory with a fixed list of server admins.
type fakeUsers struct {
	*memdb.DB
	admins map[string]bool
}

// Docs lists the user docs.
func (f fakeUsers) Docs() []Doc {
	var out []Doc
	for _, d := range f.All() {
		out = append(out, d)
	}
	return out
}

func (f fakeUsers) HasUserForContact(_ context.Context, id string) (bool, error) {
	for _, d := range f.All() {
		if d["contact_id"] == id {
			return true, nil
		}
	}
	return false, nil
}

func (f fakeUsers) IsServerAdmin(_ context.Context, name string) (bool, error) {
	return f.admins[name], nil
}

func cufcSettings(extra map[string]any) map[string]any {
	raw := map[string]any{
		"transitions": map[string]any{"create_user_for_contacts": true},
		"token_login": map[string]any{"enabled": true, "message": "Hi {{fullname}} ({{name}})"},
		"app_url":     "https://cht.example.org/",
	}
	for k, v := range extra {
		raw[k] = v
	}
	return raw
}

func cufcEnv(t *testing.T, raw map[string]any, main *memdb.DB, users fakeUsers) *Env {
	t.Helper()
	env := alertsEnv(t, raw, main, time.Second)
	if !env.Config.Valid() {
		t.Fatalf("invalid config: %s", env.Config.ErrorSummary())
	}
	env.Users = users
	return env
}

func TestCreateUserForContactsConfig(t *testing.T) {
	cases := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"valid", cufcSettings(nil), nil},
		{"no token login", cufcSettings(map[string]any{"token_login": map[string]any{"enabled": false}}),
			[]string{"Token login must be enabled"}},
		{"no app_url", cufcSettings(map[string]any{"app_url": ""}), []string{"app_url must be defined"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Load(c.raw, nil)
			summary := cfg.ErrorSummary()
			if len(c.want) == 0 && !cfg.Valid() {
				t.Fatalf("invalid: %s", summary)
			}
			for _, w := range c.want {
				if !strings.Contains(summary, w) {
					t.Errorf("errors %q lack %q", summary, w)
				}
			}
		})
	}
}

func TestUsernameBase(t *testing.T) {
	for in, want := range map[string]string{
		"Néw Person":       "new-person",
		"  Ünïcödé  name ": "--unicode--name-",
		"O'Brien-Smith 3":  "obriensmith-3",
	} {
		if got := usernameBase(in); got != want {
			t.Errorf("usernameBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRandomStringIsUnbiasedAndSized(t *testing.T) {
	// 250 and above are redrawn for a 10-letter alphabet.
	src := bytes.NewReader([]byte{255, 251, 3, 250, 19, 7, 9, 9})
	got, err := randomString(src, "0123456789", 4)
	if err != nil || got != "3979" {
		t.Fatalf("randomString = %q, %v", got, err)
	}
}

func TestCreateUserForContactsFilter(t *testing.T) {
	person := func(ufc any) Doc {
		return Doc{"_id": "p", "type": "person", "user_for_contact": ufc}
	}
	ready := map[string]any{"replace": map[string]any{"old": map[string]any{"status": "READY"}}}
	cases := []struct {
		name string
		doc  Doc
		info Doc
		want bool
	}{
		{"new contact asking", person(map[string]any{"create": "true"}), Doc{}, true},
		{"seen before", person(map[string]any{"create": "true"}), Doc{"transitions": map[string]any{}}, false},
		{"boolean true does not count", person(map[string]any{"create": true}), Doc{}, false},
		{"place", Doc{"_id": "c", "type": "clinic", "user_for_contact": map[string]any{"create": "true"}}, Doc{}, false},
		{"replace ready, seen before", person(ready), Doc{"transitions": map[string]any{}}, true},
		{"replace not ready", person(map[string]any{"replace": map[string]any{"old": map[string]any{"status": "PENDING"}}}), Doc{}, false},
	}
	env := cufcEnv(t, cufcSettings(nil), memdb.New("medic"), fakeUsers{DB: memdb.New("_users")})
	tr := env.Config.Transitions[0]
	for _, c := range cases {
		if got := tr.Filter(env, &Change{Doc: c.doc, Info: c.info}); got != c.want {
			t.Errorf("%s: Filter = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCreateUserForContactsCreate(t *testing.T) {
	parent := map[string]any{"_id": "clinic"}
	cases := []struct {
		name    string
		contact Doc
		wantErr string
		roles   []any
	}{
		{"roles", Doc{"name": "Néw Person", "phone": "+254712345678", "roles": []any{"chw", "x"}}, "", []any{"chw", "x"}},
		{"role", Doc{"name": "Néw Person", "phone": "+254712345678", "role": "chw"}, "", []any{"chw"}},
		{"no role", Doc{"name": "Néw Person", "phone": "+254712345678"}, "role", nil},
		{"no phone", Doc{"name": "Néw Person", "role": "chw"}, "phone", nil},
		{"invalid phone", Doc{"name": "Néw Person", "role": "chw", "phone": "12"}, "phone", nil},
		{"no name", Doc{"phone": "+254712345678", "role": "chw"}, "name", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			contact := Doc{"_id": "p1", "type": "person", "parent": parent,
				"user_for_contact": map[string]any{"create": "true"}}
			for k, v := range c.contact {
				contact[k] = v
			}
			main := memdb.New("medic").Load(Doc{"_id": "clinic", "type": "clinic"}, contact)
			users := fakeUsers{DB: memdb.New("_users")}
			env := cufcEnv(t, cufcSettings(nil), main, users)
			ch := &Change{ID: "p1", Doc: hydrated(t, env, "p1"), Info: Doc{}}
			changed, err := env.Config.Transitions[0].Run(context.Background(), env, ch)
			if !changed {
				t.Fatal("Run did not change the doc")
			}
			userDocs := users.Docs()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one about %q", err, c.wantErr)
				}
				if len(userDocs) != 0 {
					t.Errorf("users written: %v", userDocs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(jsonOf(ch.Doc["user_for_contact"])) != 2 {
				t.Errorf("user_for_contact = %v, want {}", ch.Doc["user_for_contact"])
			}
			if len(userDocs) != 1 {
				t.Fatalf("users = %v", userDocs)
			}
			u := userDocs[0]
			if !regexp.MustCompile(`^new-person-[0-9]{4}$`).MatchString(u["name"].(string)) {
				t.Errorf("username %v", u["name"])
			}
			if jsonOf(u["roles"]) != jsonOf(c.roles) || jsonOf(u["facility_id"]) != `["clinic"]` || u["contact_id"] != "p1" {
				t.Errorf("user doc %v", u)
			}
			token := u["token_login"].(map[string]any)["token"].(string)
			sms, err := main.Get(context.Background(), "token:login:"+token)
			if err != nil {
				t.Fatal(err)
			}
			tasks := jsonOf(sms["tasks"])
			if !strings.Contains(tasks, `"message":"Hi Néw Person (`+u["name"].(string)+`)"`) ||
				!strings.Contains(tasks, `"message":"https://cht.example.org/medic/login/token/`+token+`"`) {
				t.Errorf("login SMS tasks %s", tasks)
			}
			if strings.Contains(jsonOf(sms), u["password"].(string)) {
				t.Error("the login SMS doc holds the password")
			}
			settings, err := main.Get(context.Background(), "org.couchdb.user:"+u["name"].(string))
			if err != nil || settings["type"] != "user-settings" || settings["fullname"] != "Néw Person" || settings["password"] != nil {
				t.Errorf("user-settings %v, %v", settings, err)
			}
		})
	}
}

func TestCreateUserForContactsReplace(t *testing.T) {
	cases := []struct {
		name       string
		repID      string
		admins     map[string]bool
		permission []any
		wantStatus string
		wantChange any // old user's password_change_required
	}{
		{"replaced", "p2", nil, nil, "COMPLETE", true},
		{"role may skip the password change", "p2", nil, []any{"chw"}, "COMPLETE", false},
		{"unknown replacement", "nobody", nil, nil, "ERROR", nil},
		{"server admin", "p2", map[string]bool{"old": true}, nil, "ERROR", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p1 := Doc{"_id": "p1", "type": "person", "name": "Old", "parent": map[string]any{"_id": "clinic"},
				"user_for_contact": map[string]any{"replace": map[string]any{"old": map[string]any{"status": "READY", "replacement_contact_id": c.repID}}}}
			p2 := Doc{"_id": "p2", "type": "person", "name": "New One", "phone": "+254712345678", "parent": map[string]any{"_id": "clinic"}}
			main := memdb.New("medic").Load(Doc{"_id": "clinic", "type": "clinic"}, p1, p2,
				Doc{"_id": "org.couchdb.user:old", "type": "user-settings", "name": "old"})
			users := fakeUsers{DB: memdb.New("_users").Load(Doc{"_id": "org.couchdb.user:old", "name": "old", "type": "user", "roles": []any{"chw"}}), admins: c.admins}
			raw := cufcSettings(map[string]any{"permissions": map[string]any{"can_skip_password_change": c.permission}})
			env := cufcEnv(t, raw, main, users)
			ch := &Change{ID: "p1", Doc: hydrated(t, env, "p1"), Info: Doc{"transitions": map[string]any{}}}
			_, err := env.Config.Transitions[0].Run(context.Background(), env, ch)
			status := ch.Doc["user_for_contact"].(map[string]any)["replace"].(map[string]any)["old"].(map[string]any)["status"]
			if status != c.wantStatus {
				t.Fatalf("status = %v (err %v), want %s", status, err, c.wantStatus)
			}
			if (err != nil) != (c.wantStatus == "ERROR") {
				t.Fatalf("err = %v", err)
			}
			old, _ := users.Get(context.Background(), "org.couchdb.user:old")
			if old["password_change_required"] != c.wantChange {
				t.Errorf("old user %v", old)
			}
			if c.wantStatus == "COMPLETE" {
				if n := len(users.Docs()); n != 2 {
					t.Errorf("%d users, want the old and the new", n)
				}
			}
		})
	}
}

// TestCreateUserForContactsRunAgain: a change run again after the user was
// written (a 409 on the contact's save, a replay after a crash) creates no
// second user.
func TestCreateUserForContactsRunAgain(t *testing.T) {
	contact := Doc{"_id": "p1", "type": "person", "name": "Ann", "phone": "+254712345678", "role": "chw",
		"parent": map[string]any{"_id": "clinic"}, "user_for_contact": map[string]any{"create": "true"}}
	main := memdb.New("medic").Load(Doc{"_id": "clinic", "type": "clinic"}, contact)
	users := fakeUsers{DB: memdb.New("_users")}
	env := cufcEnv(t, cufcSettings(nil), main, users)
	for range 2 {
		ch := &Change{ID: "p1", Doc: hydrated(t, env, "p1"), Info: Doc{}}
		if changed, err := env.Config.Transitions[0].Run(context.Background(), env, ch); !changed || err != nil {
			t.Fatalf("Run = %v, %v", changed, err)
		}
		if _, ok := ch.Doc["user_for_contact"].(map[string]any)["create"]; ok {
			t.Fatal("create flag kept")
		}
	}
	if n := len(users.Docs()); n != 1 {
		t.Fatalf("%d users for one contact", n)
	}
}

func TestCreateUserForContactsDryRunWritesNothing(t *testing.T) {
	contact := Doc{"_id": "p1", "type": "person", "name": "Ann", "phone": "+254712345678", "roles": []any{"chw"},
		"parent": map[string]any{"_id": "clinic"}, "user_for_contact": map[string]any{"create": "true"}}
	main := memdb.New("medic").Load(Doc{"_id": "clinic", "type": "clinic"}, contact)
	users := fakeUsers{DB: memdb.New("_users")}
	env := cufcEnv(t, cufcSettings(nil), main, users)
	dr := env.Config.Transitions[0].(DryRunner)
	would, err := dr.DryRun(context.Background(), env, &Change{ID: "p1", Doc: hydrated(t, env, "p1"), Info: Doc{}})
	if err != nil || len(would) != 1 || !strings.Contains(would[0], "create a user with roles [chw]") {
		t.Fatalf("DryRun = %q, %v", would, err)
	}
	if len(users.Docs()) != 0 || len(main.All()) != 2 {
		t.Fatal("DryRun wrote")
	}
}
