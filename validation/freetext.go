package validation

import (
	"strings"

	"sentinel-go/jsv"
)

// exists, unique and uniqueWithin look reports up the way CHT's report
// free-text index matches them (validations.md §3): terms "key:value" with
// the value lower-cased (the key as written), for string and number values.

// freetextExcluded lists keys the index never holds.
var freetextExcluded = map[string]bool{"_id": true, "_rev": true, "type": true, "refid": true, "content": true}

// freetextTerm returns the index term of field = value, or false when such a
// pair can never match: excluded keys, keys ending in _date, values that are
// not strings or numbers, pairs shorter than 3 characters, and keys that are
// not lower case (the index holds lower-cased pairs and the key is not
// lower-cased before the lookup, so such a key finds nothing). An empty value
// never matches either (spec silent: an empty field is not a value to
// compare, and the index has nothing to find for it).
func freetextTerm(key string, v any) (string, bool) {
	if freetextExcluded[key] || strings.HasSuffix(key, "_date") || jsLower(key) != key {
		return "", false
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case float64, int, int64:
		s = jsv.String(x)
	default:
		return "", false
	}
	if s == "" {
		return "", false
	}
	term := key + ":" + jsLower(s)
	if utf16Len(term) < 3 {
		return "", false
	}
	return term, true
}

// exists(form, field): another error-free report of that form has field =
// this doc's value(field). Forms compare case-insensitively, as the index
// lower-cases values. Database errors (or no Store) give false.
func fnExists(ec *evalCtx, _ any, args []any, _ *callNode) (bool, error) {
	if len(args) < 2 || ec.env.Store == nil {
		return false, nil
	}
	form := jsv.String(args[0])
	field := jsv.String(args[1])
	term, ok := freetextTerm(field, ec.lookup(field))
	if !ok {
		return false, nil
	}
	refs, err := ec.env.Store.ReportsByFreetext(ec.ctx, term)
	if err != nil {
		return false, nil
	}
	for _, r := range refs {
		if r.ID != ec.docID && !r.HasErrors && strings.EqualFold(r.Form, form) {
			return true, nil
		}
	}
	return false, nil
}

// unique(f1, …): no other error-free report has the same values for all the
// fields ('form' allowed).
func fnUnique(ec *evalCtx, _ any, args []any, _ *callNode) (bool, error) {
	return ec.unique(args, 0, false), nil
}

// uniqueWithin(f1, …, 'N unit'): as unique, among reports with
// reported_date ≥ now − duration. An invalid duration gives false, as for
// isAfter/isBefore (spec silent).
func fnUniqueWithin(ec *evalCtx, _ any, args []any, _ *callNode) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	d, ok := parseDuration(args[len(args)-1])
	if !ok {
		return false, nil
	}
	since := d.addTo(ec.now.In(ec.loc), -1)
	return ec.unique(args[:len(args)-1], float64(since.UnixMilli()), true), nil
}

// unique reports whether no other error-free report (with reported_date ≥
// since when windowed) matches every field. Without fields, or when a field
// can never match, the doc is unique. Database errors (or no Store) give
// false.
func (ec *evalCtx) unique(fields []any, since float64, windowed bool) bool {
	if len(fields) == 0 {
		return true
	}
	terms := make([]string, 0, len(fields))
	for _, f := range fields {
		key := jsv.String(f)
		term, ok := freetextTerm(key, ec.lookup(key))
		if !ok {
			return true
		}
		terms = append(terms, term)
	}
	if ec.env.Store == nil {
		return false
	}
	var candidates map[string]bool
	for i, term := range terms {
		refs, err := ec.env.Store.ReportsByFreetext(ec.ctx, term)
		if err != nil {
			return false
		}
		found := make(map[string]bool, len(refs))
		for _, r := range refs {
			if r.ID == ec.docID || r.HasErrors || (windowed && !(r.ReportedDate >= since)) {
				continue
			}
			if i == 0 || candidates[r.ID] {
				found[r.ID] = true
			}
		}
		if len(found) == 0 {
			return true
		}
		candidates = found
	}
	return len(candidates) == 0
}
