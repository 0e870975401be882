package validation

import (
	"context"
	"errors"
	"strings"

	"sentinel-go/jsv"
)

// fakeStore is an in-memory Store: reports are indexed the way the spec
// describes CHT's report free-text index.
type fakeStore struct {
	reports []map[string]any
	phones  map[string]bool
	fail    bool // every call returns an error
	calls   []string
}

var errFake = errors.New("database unavailable")

func (s *fakeStore) ReportsByFreetext(_ context.Context, term string) ([]ReportRef, error) {
	s.calls = append(s.calls, "freetext "+term)
	if s.fail {
		return nil, errFake
	}
	var out []ReportRef
	for _, r := range s.reports {
		if r["type"] != "data_record" {
			continue
		}
		form, ok := r["form"].(string)
		if !ok || form == "" {
			continue
		}
		if !indexTerms(r)[term] {
			continue
		}
		rd, _ := r["reported_date"].(float64)
		errs, _ := r["errors"].([]any)
		id, _ := r["_id"].(string)
		out = append(out, ReportRef{ID: id, Form: form, ReportedDate: rd, HasErrors: len(errs) > 0})
	}
	return out, nil
}

// indexTerms returns the lower-cased key:value pairs of a report's string and
// number values, at top level and in fields.
func indexTerms(doc map[string]any) map[string]bool {
	terms := map[string]bool{}
	add := func(m map[string]any) {
		for k, v := range m {
			if freetextExcluded[k] || strings.HasSuffix(k, "_date") {
				continue
			}
			var s string
			switch x := v.(type) {
			case string:
				s = x
			case float64:
				s = jsv.String(x)
			default:
				continue
			}
			t := strings.ToLower(k + ":" + s)
			if len(t) >= 3 {
				terms[t] = true
			}
		}
	}
	add(doc)
	if f, ok := doc["fields"].(map[string]any); ok {
		add(f)
	}
	return terms
}

func (s *fakeStore) ContactPhoneExists(_ context.Context, phone string) (bool, error) {
	s.calls = append(s.calls, "phone "+phone)
	if s.fail {
		return false, errFake
	}
	return s.phones[phone], nil
}
