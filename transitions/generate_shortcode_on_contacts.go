package transitions

import (
	"context"

	"sentinel-go/config"
	"sentinel-go/shortcode"
)

// shortcodeOnContacts gives persons a patient_id and places a place_id when
// they have none (generate_shortcode_on_contacts and its deprecated alias
// generate_patient_id_on_people, which differ only in name).
type shortcodeOnContacts struct{ name string }

func newShortcodeOnContacts(name string) constructor {
	return func(*config.Settings, string) (Transition, []config.Problem) {
		return &shortcodeOnContacts{name: name}, nil
	}
}

func (t *shortcodeOnContacts) Name() string { return t.name }

// Filter: a contact of a type listed in settings.contact_types that lacks its
// shortcode. No has-run check: a deleted shortcode is given again.
func (t *shortcodeOnContacts) Filter(env *Env, c *Change) bool {
	cts := env.Settings().ContactTypes
	if !cts.Configured() {
		return false
	}
	typ := config.TypeOf(c.Doc)
	ct := cts.Get(typ)
	if ct == nil {
		return false
	}
	if ct.Person {
		return !hasValue(c.Doc["patient_id"])
	}
	return !hasValue(c.Doc["place_id"])
}

func (t *shortcodeOnContacts) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	code, err := NewShortcode(ctx, env)
	if err != nil {
		return false, err
	}
	if env.Settings().ContactTypes.IsPerson(config.TypeOf(c.Doc)) {
		c.Doc["patient_id"] = code
	} else {
		c.Doc["place_id"] = code
	}
	return true, nil
}

// NewShortcode returns a new unique shortcode from the main db.
func NewShortcode(ctx context.Context, env *Env) (string, error) {
	g := &shortcode.Generator{Store: shortcodeStore{env.Store}, IsNotFound: IsNotFound, IsConflict: IsConflict, Rand: env.Rand}
	return g.Next(ctx)
}

type shortcodeStore struct{ Store }

func (s shortcodeStore) Get(ctx context.Context, id string) (map[string]any, error) {
	return s.Store.Get(ctx, id)
}
func (s shortcodeStore) Put(ctx context.Context, d map[string]any) error { return s.Store.Put(ctx, d) }

// hasValue: present, not null, not "".
func hasValue(v any) bool {
	if v == nil {
		return false
	}
	if s, ok := v.(string); ok {
		return s != ""
	}
	return true
}
