package transitions

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/messages"
	"sentinel-go/phone"
)

// createUserForContacts creates a CHT login user, with a token-login SMS,
// for a new person contact that asks for one, and replaces the user of a
// contact marked for replacement (transitions/create_user_for_contacts.md).
// Everything goes straight to CouchDB: `_users`, the user-settings doc, the
// `token:login:*` SMS doc and the contact.
type createUserForContacts struct{}

const cufcName = "create_user_for_contacts"

func newCreateUserForContacts(s *config.Settings, path string) (Transition, []config.Problem) {
	var ps []config.Problem
	if s.Get("token_login.enabled") != true {
		ps = append(ps, config.Errorf("token_login.enabled", "Configuration error. Token login must be enabled to use the create_user_for_contacts transition."))
	}
	if u, _ := s.Get("app_url").(string); u == "" {
		ps = append(ps, config.Errorf("app_url", "Configuration error. The app_url must be defined to use the create_user_for_contacts transition."))
	}
	if config.HasErrors(ps) {
		return nil, ps
	}
	return createUserForContacts{}, nil
}

func (createUserForContacts) Name() string { return cufcName }

// Filter: a person with user_for_contact that either asks for a user
// (create is the string "true") on its first pass through the pipeline, or
// has a replacement READY.
func (createUserForContacts) Filter(env *Env, c *Change) bool {
	if !isPersonDoc(env.Settings(), c.Doc) {
		return false
	}
	ufc := jsv.Map(c.Doc["user_for_contact"])
	if ufc == nil {
		return false
	}
	if len(readyReplacements(ufc)) > 0 {
		return true
	}
	_, seen := c.Info["transitions"]
	return ufc["create"] == "true" && !seen
}

func isPersonDoc(s *config.Settings, doc Doc) bool {
	cts := s.ContactTypes
	if cts.Configured() {
		return cts.IsPerson(config.TypeOf(doc))
	}
	return doc["type"] == "person"
}

// readyReplacements are the usernames whose replacement is READY, sorted
// so that the attempts (and their errors) come in a stable order.
func readyReplacements(ufc map[string]any) []string {
	var out []string
	for name, e := range jsv.Map(ufc["replace"]) {
		if jsv.Map(e)["status"] == "READY" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (t createUserForContacts) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	if env.Users == nil {
		return false, errors.New("no user database available")
	}
	ufc := jsv.Map(c.Doc["user_for_contact"])
	var failures []string
	if names := readyReplacements(ufc); len(names) > 0 {
		replace := jsv.Map(ufc["replace"])
		for _, name := range names {
			entry := jsv.Map(replace[name])
			if err := t.replace(ctx, env, name, entry); err != nil {
				if isDBFailure(err) {
					return false, err
				}
				entry["status"] = "ERROR"
				failures = append(failures, err.Error())
				continue
			}
			entry["status"] = "COMPLETE"
		}
		delete(ufc, "create")
	} else {
		if err := t.create(ctx, env, c.Doc); err != nil {
			if isDBFailure(err) {
				return false, err
			}
			failures = append(failures, err.Error())
		} else {
			delete(ufc, "create")
		}
	}
	if len(failures) > 0 {
		return true, &ChangedError{Err: errors.New(strings.Join(failures, ", "))}
	}
	return true, nil
}

// isDBFailure: an unreachable server or a 5xx is retried by the engine,
// never recorded as the transition's failure.
func isDBFailure(err error) bool {
	var ce interface{ Temporary() bool }
	return errors.As(err, &ce) && ce.Temporary()
}

// create makes a user for contact with its own roles.
func (t createUserForContacts) create(ctx context.Context, env *Env, contact Doc) error {
	roles := contactRoles(contact)
	if len(roles) == 0 {
		return errors.New("Contact must have a role or roles to create a user")
	}
	return t.newUser(ctx, env, contact, roles)
}

func contactRoles(contact Doc) []any {
	if rs := jsv.Slice(contact["roles"]); len(rs) > 0 {
		return rs
	}
	if r, ok := contact["role"].(string); ok && r != "" {
		return []any{r}
	}
	return nil
}

// replace gives the replacement contact of entry a new user with the roles
// of user name, then resets name's password.
func (t createUserForContacts) replace(ctx context.Context, env *Env, name string, entry map[string]any) error {
	repID, _ := entry["replacement_contact_id"].(string)
	if repID == "" {
		return fmt.Errorf("No replacement contact id for user %q", name)
	}
	rep, err := env.Store.Get(ctx, repID)
	if IsNotFound(err) {
		return fmt.Errorf("Replacement contact %q not found", repID)
	}
	if err != nil {
		return fmt.Errorf("read replacement contact %s: %w", repID, err)
	}
	userID := "org.couchdb.user:" + name
	user, err := env.Users.Get(ctx, userID)
	if IsNotFound(err) {
		return fmt.Errorf("User %q not found", name)
	}
	if err != nil {
		return fmt.Errorf("read user %s: %w", name, err)
	}
	if _, err := env.Store.Get(ctx, userID); IsNotFound(err) {
		return fmt.Errorf("User settings of %q not found", name)
	} else if err != nil {
		return fmt.Errorf("read user settings %s: %w", name, err)
	}
	roles := jsv.Slice(user["roles"])
	if err := t.newUser(ctx, env, rep, roles); err != nil {
		return err
	}
	if ufc := jsv.Map(rep["user_for_contact"]); ufc != nil && ufc["create"] != nil {
		// The user layer removes the flag from the contact the user is for.
		delete(ufc, "create")
		if err := env.Store.Put(ctx, rep); err != nil {
			return fmt.Errorf("save replacement contact %s: %w", repID, err)
		}
	}
	return resetPassword(ctx, env, user)
}

// resetPassword gives user a new random password (the server re-hashes it,
// which ends the user's sessions). Server admins are refused.
func resetPassword(ctx context.Context, env *Env, user Doc) error {
	name, _ := user["name"].(string)
	admin, err := env.Users.IsServerAdmin(ctx, name)
	if err != nil {
		return fmt.Errorf("check server admins: %w", err)
	}
	if admin {
		return fmt.Errorf("User %q is a server admin: its password is not reset", name)
	}
	pw, err := randomString(rand.Reader, passwordAlphabet, 24)
	if err != nil {
		return err
	}
	user["password"] = pw
	user["password_change_required"] = !canSkipPasswordChange(env.Settings(), jsv.Slice(user["roles"]))
	if err := env.Users.Put(ctx, user); err != nil {
		return fmt.Errorf("reset the password of %s: %w", name, err)
	}
	return nil
}

func canSkipPasswordChange(s *config.Settings, roles []any) bool {
	allowed := jsv.Slice(s.Get("permissions.can_skip_password_change"))
	for _, r := range roles {
		for _, a := range allowed {
			if r == a {
				return true
			}
		}
	}
	return false
}

// newUser writes the `_users` doc, the user-settings doc and the token-login
// SMS doc of a new user for contact.
func (t createUserForContacts) newUser(ctx context.Context, env *Env, contact Doc, roles []any) error {
	s := env.Settings()
	contactID, _ := contact["_id"].(string)
	// The change may be run again after its writes (a 409 on the
	// contact's save, a replay after a crash): the user it made stands.
	if has, err := env.Users.HasUserForContact(ctx, contactID); err != nil {
		return fmt.Errorf("check the users of %s: %w", contactID, err)
	} else if has {
		env.Log.Info().Str("doc_id", contactID).Msg("The contact has a user already")
		return nil
	}
	fullname, _ := contact["name"].(string)
	if fullname == "" {
		return errors.New("Contact must have a name to create a user")
	}
	rawPhone, _ := contact["phone"].(string)
	if rawPhone == "" {
		return errors.New("Contact must have a phone number to create a user")
	}
	tel, ok := phone.Normalize(rawPhone, s.DefaultCountryCode(), s.String("phone_validation", ""))
	if !ok {
		return fmt.Errorf("Contact phone number %q is not valid", rawPhone)
	}
	place := jsv.String(jsv.Map(contact["parent"])["_id"])
	if place == "" {
		return errors.New("Contact must have a parent place to create a user")
	}
	username, err := t.freeUsername(ctx, env, fullname)
	if err != nil {
		return err
	}
	token, err := t.freeToken(ctx, env)
	if err != nil {
		return err
	}
	password, err := randomString(rand.Reader, passwordAlphabet, 24)
	if err != nil {
		return err
	}
	expires := float64(env.Now.Add(24 * time.Hour).UnixMilli())
	id := "org.couchdb.user:" + username
	user := Doc{"_id": id, "name": username, "type": "user", "roles": roles,
		"facility_id": []any{place}, "contact_id": contactID,
		"password": password, "password_change_required": false,
		"token_login": map[string]any{"active": true, "token": token, "expiration_date": expires}}
	settings := Doc{"_id": id, "name": username, "type": "user-settings", "fullname": fullname,
		"phone": tel, "roles": roles, "facility_id": []any{place}, "contact_id": contactID,
		"token_login": map[string]any{"active": true, "expiration_date": expires}}
	sms, err := t.loginSMS(env, user, settings, token, tel)
	if err != nil {
		return err
	}
	if err := env.Users.Put(ctx, user); err != nil {
		return fmt.Errorf("create user %s: %w", username, err)
	}
	if err := env.Store.Put(ctx, settings); err != nil {
		return fmt.Errorf("create user settings %s: %w", username, err)
	}
	if err := env.Store.Put(ctx, sms); err != nil {
		return fmt.Errorf("create login SMS of %s: %w", username, err)
	}
	env.Log.Info().Str("doc_id", contactID).Str("user", username).Msg("Created a user for the contact")
	return nil
}

// loginSMS is the `token:login:<token>` doc: the configured login message,
// then the link, both pending to the user's phone.
func (createUserForContacts) loginSMS(env *Env, user, settings Doc, token, to string) (Doc, error) {
	s := env.Settings()
	g := env.Generator()
	// The message context is the user-settings doc overlaid by the _users
	// doc, without the password that the _users doc carries in clear.
	ctxDoc := jsv.CloneMap(settings)
	for k, v := range user {
		if k != "password" {
			ctxDoc[k] = v
		}
	}
	spec := messages.Spec{Message: s.Get("token_login.message")}
	spec.TranslationKey, _ = s.Get("token_login.translation_key").(string)
	text, err := g.Render(ctxDoc, g.Text(spec, g.Locale(ctxDoc)), nil)
	if err != nil {
		return nil, fmt.Errorf("render the login message: %w", err)
	}
	link := strings.TrimRight(jsv.String(s.Get("app_url")), "/") + "/medic/login/token/" + token
	var tasks []any
	for _, body := range []string{text, link} {
		// Built as they are: the first text is rendered already, and
		// rendering the link again would read a token as a template.
		msg := map[string]any{"uuid": uuid.NewString(), "to": to, "message": body}
		if body == "" {
			delete(msg, "message")
			msg["error"] = "messages.errors.message.empty"
		}
		task := map[string]any{"messages": []any{msg}}
		messages.SetState(task, messages.StatePending, nil, "", false, env.Now)
		tasks = append(tasks, task)
	}
	return Doc{"_id": "token:login:" + token, "type": "token_login",
		"reported_date": float64(env.Now.UnixMilli()), "user": user["_id"], "tasks": tasks}, nil
}

// freeUsername derives a username from the contact's name plus random
// digits, one more digit per 10 collisions, giving up after 100; a name is
// free when neither `_users` nor the main db has its doc.
func (createUserForContacts) freeUsername(ctx context.Context, env *Env, fullname string) (string, error) {
	base := usernameBase(fullname)
	r := env.Rand
	if r == nil {
		r = rand.Reader
	}
	for attempt := 0; attempt < 100; attempt++ {
		digits, err := randomString(r, "0123456789", 4+attempt/10)
		if err != nil {
			return "", err
		}
		name := base + "-" + digits
		id := "org.couchdb.user:" + name
		if _, err := env.Users.Get(ctx, id); err == nil {
			continue
		} else if !IsNotFound(err) {
			return "", fmt.Errorf("check username %s: %w", name, err)
		}
		if _, err := env.Store.Get(ctx, id); err == nil {
			continue
		} else if !IsNotFound(err) {
			return "", fmt.Errorf("check username %s: %w", name, err)
		}
		return name, nil
	}
	return "", errors.New("Could not find a free username after 100 attempts")
}

// usernameBase: accents stripped, lower case, only a-z, 0-9 and spaces
// kept, spaces as '-'.
func usernameBase(name string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(name) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		r = unicode.ToLower(r)
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if r == ' ' {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// tokenAlphabet: letters, digits and the punctuation a URL path keeps as it is.
const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"

const passwordAlphabet = tokenAlphabet + "!*()@$"

// freeToken draws a 64-character token unused among `token:login:*` ids.
func (createUserForContacts) freeToken(ctx context.Context, env *Env) (string, error) {
	for range 10 {
		tok, err := randomString(rand.Reader, tokenAlphabet, 64)
		if err != nil {
			return "", err
		}
		if _, err := env.Store.Get(ctx, "token:login:"+tok); IsNotFound(err) {
			return tok, nil
		} else if err != nil {
			return "", fmt.Errorf("check login token: %w", err)
		}
	}
	return "", errors.New("Could not find an unused login token")
}

// randomString draws n characters of alphabet (at most 256 long) from r
// without bias: bytes past the last whole multiple are drawn again.
func randomString(r io.Reader, alphabet string, n int) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("random bytes: %w", err)
		}
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// DryRun says which users Run would create or replace, writing nothing
// (sentinel explain has no `_users` to write to, and must not).
func (createUserForContacts) DryRun(_ context.Context, _ *Env, c *Change) ([]string, error) {
	ufc := jsv.Map(c.Doc["user_for_contact"])
	if names := readyReplacements(ufc); len(names) > 0 {
		var out []string
		replace := jsv.Map(ufc["replace"])
		for _, name := range names {
			rep := jsv.String(jsv.Map(replace[name])["replacement_contact_id"])
			out = append(out, fmt.Sprintf("replace user %q by a new user for contact %q, with its roles, and reset its password", name, rep))
		}
		return out, nil
	}
	roles := contactRoles(c.Doc)
	if len(roles) == 0 {
		return nil, errors.New("Contact must have a role or roles to create a user")
	}
	return []string{fmt.Sprintf("create a user with roles %v for contact %q and send it the login link by SMS", roles, c.ID)}, nil
}
