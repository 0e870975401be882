package registrations

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"sentinel-go/config"
)

func TestFormIsRegistration(t *testing.T) {
	if !formIsRegistration("1p!", "P") || formIsRegistration("xP1", "p") || formIsRegistration("PREG", "P") {
		t.Error("registration form matching wrong")
	}
	if formIsRegistration("", "P") || formIsRegistration("P", "") {
		t.Error("an empty form is never a registration")
	}
}

type fakeStore struct {
	reports []map[string]any
	asked   [][]string
	err     error
}

func (f *fakeStore) ReportsBySubject(_ context.Context, ids []string) ([]map[string]any, error) {
	f.asked = append(f.asked, ids)
	return f.reports, f.err
}

func ids(docs []map[string]any) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d["_id"].(string))
	}
	return out
}

func TestValid(t *testing.T) {
	s := config.NewSettings(map[string]any{
		"registrations": []any{map[string]any{"form": "P"}, map[string]any{"form": "x"}, map[string]any{"form": "PUB"}},
		"forms": map[string]any{
			"P":   map[string]any{},
			"PUB": map[string]any{"public_form": true},
			"V":   map[string]any{},
		},
	})
	store := &fakeStore{reports: []map[string]any{
		{"_id": "sms-contact", "form": "P", "contact": map[string]any{"_id": "c"}},
		{"_id": "sms-anonymous", "form": "P"},
		{"_id": "sms-public", "form": "PUB"},
		{"_id": "sms-errors", "form": "P", "contact": map[string]any{"_id": "c"}, "errors": []any{map[string]any{"code": "x"}}},
		{"_id": "sms-not-reg", "form": "V", "contact": map[string]any{"_id": "c"}},
		{"_id": "xml", "form": "x", "content_type": "xml"},
		{"_id": "sms-unknown-form", "form": "x", "contact": map[string]any{"_id": "c"}},
	}}
	got, err := Valid(context.Background(), store, s, []string{"", "p1", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sms-contact", "sms-public", "xml"}
	if !reflect.DeepEqual(ids(got), want) {
		t.Errorf("valid registrations = %v, want %v", ids(got), want)
	}
	if !reflect.DeepEqual(store.asked, [][]string{{"p1"}}) {
		t.Errorf("store asked %v, want the non-empty ids", store.asked)
	}

	store.asked = nil
	if got, err := Valid(context.Background(), store, s, []string{"", ""}); err != nil || got != nil || store.asked != nil {
		t.Errorf("no id: got %v, %v, store asked %v", got, err, store.asked)
	}

	store.err = errors.New("down")
	if _, err := Valid(context.Background(), store, s, []string{"p1"}); !errors.Is(err, store.err) {
		t.Errorf("store error not returned: %v", err)
	}
}

func TestSubjectIDs(t *testing.T) {
	got := SubjectIDs(map[string]any{"_id": "a", "patient_id": "", "place_id": 12.0, "name": "n"})
	if !reflect.DeepEqual(got, []string{"a", "12"}) {
		t.Errorf("SubjectIDs = %v", got)
	}
}
