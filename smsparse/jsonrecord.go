package smsparse

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"sentinel-go/jsv"
)

// Errors of ParseJSONRecord: the body cannot become a report.
var (
	// ErrNoMeta: the body has no `_meta` object.
	ErrNoMeta = errors.New("smsparse: record has no _meta object")
	// ErrNoForm: `_meta.form` is missing or blank.
	ErrNoForm = errors.New("smsparse: record has no _meta.form")
	// ErrFormNotFound: `_meta.form` is not a configured form.
	ErrFormNotFound = errors.New("smsparse: form not found")
)

// ParseJSONRecord handles the JSON records API body
// {"_meta": {form, from, reported_date, locale}, field: value, …}
// (spec/sms.md §3): field names are lower-cased (a name matching a form field
// case-insensitively takes the field's key as configured), `date` fields
// become epoch ms, `boolean` 1/0 become true/false; other values are kept as
// sent, since JSON clients send typed values. Names that are not fields of
// the form are kept too.
//
// The returned meta is a copy of `_meta` with `form` upper-cased and
// `reported_date` as epoch ms (removed when unreadable, so that the caller
// falls back to the receipt time). The error is ErrNoMeta, ErrNoForm or
// (wrapped) ErrFormNotFound; the Result is then empty.
func ParseJSONRecord(body map[string]any, forms *Forms, opts Options) (Result, map[string]any, error) {
	res := Result{Fields: map[string]any{}, Errors: []map[string]any{}}
	metaIn, ok := body["_meta"].(map[string]any)
	if !ok {
		return res, nil, ErrNoMeta
	}
	meta := make(map[string]any, len(metaIn))
	for k, v := range metaIn {
		meta[k] = jsv.Clone(v)
	}
	code := ""
	if s, ok := metaIn["form"].(string); ok {
		code = strings.ToUpper(strings.TrimSpace(s))
	}
	if code == "" {
		return res, meta, ErrNoForm
	}
	meta["form"] = code
	if rd, ok := meta["reported_date"]; ok {
		if ms, ok := ReportedDate(rd, opts.location()); ok {
			meta["reported_date"] = ms
		} else {
			delete(meta, "reported_date")
		}
	}
	form := forms.Get(code)
	if form == nil {
		return res, meta, fmt.Errorf("%w: %s", ErrFormNotFound, code)
	}
	res.Form = code

	byName := make(map[string]int, len(form.Fields))
	for i, f := range form.Fields {
		l := strings.ToLower(f.Key)
		if _, dup := byName[l]; !dup {
			byName[l] = i
		}
	}

	// Mixed-case names first, then lower-case ones, each sorted: when
	// "Notes" and "notes" are both sent the lower-case one wins, whatever
	// the map order.
	var mixed, lower []string
	for k := range body {
		if k == "_meta" {
			continue
		}
		if strings.ToLower(k) == k {
			lower = append(lower, k)
		} else {
			mixed = append(mixed, k)
		}
	}
	sort.Strings(mixed)
	sort.Strings(lower)

	values := make([]any, len(form.Fields))
	wrong := map[int]bool{}
	extra := map[string]any{}
	for _, k := range append(mixed, lower...) {
		name := strings.ToLower(k)
		i, isField := byName[name]
		if !isField {
			extra[name] = jsv.Clone(body[k])
			continue
		}
		v, ok := convertJSON(&form.Fields[i], body[k], &opts)
		delete(wrong, i)
		if !ok {
			wrong[i] = true
		}
		values[i] = v
	}

	// Extra names first so that a form field wins a dotted-key collision.
	extraKeys := make([]string, 0, len(extra))
	for k := range extra {
		extraKeys = append(extraKeys, k)
	}
	sort.Strings(extraKeys)
	for _, k := range extraKeys {
		jsv.Set(res.Fields, k, extra[k])
	}
	p := parser{form: form, opts: &opts, values: values, sent: make([]bool, len(form.Fields))}
	for i := range form.Fields {
		if wrong[i] {
			p.wrong = append(p.wrong, i)
		}
	}
	fields, refid := p.output()
	for k, v := range fields {
		res.Fields[k] = v
	}
	res.Refid = refid
	res.Errors = p.errors()
	return res, meta, nil
}

// convertJSON converts a JSON value sent for field f; ok is false when a
// date or boolean value cannot be read (the value is then null).
func convertJSON(f *Field, v any, opts *Options) (any, bool) {
	if n, isNum := v.(json.Number); isNum {
		if x, err := n.Float64(); err == nil {
			v = x
		}
	}
	switch f.Type {
	case "date":
		switch x := v.(type) {
		case nil:
			return nil, true
		case float64:
			return x, true
		case string:
			if strings.TrimSpace(x) == "" {
				return nil, true
			}
			if ms, ok := digitsMillis(x); ok {
				return ms, true
			}
			if ms, ok := parseDate(x, opts.location()); ok {
				return ms, true
			}
		}
		return nil, false
	case "boolean":
		switch x := v.(type) {
		case nil:
			return nil, true
		case bool:
			return x, true
		case float64:
			switch x {
			case 1:
				return true, true
			case 0:
				return false, true
			}
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "":
				return nil, true
			case "1", "true":
				return true, true
			case "0", "false":
				return false, true
			}
		}
		return nil, false
	}
	return jsv.Clone(v), true
}

// digitsMillis reads a string of at least 13 digits as epoch ms: gateways
// send sent times that way, and a shorter run of digits is not a time.
func digitsMillis(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 13 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	return n, err == nil
}

// ReportedDate reads a submitted sent time as epoch ms (spec/sms.md §1): a
// number, a string of at least 13 digits, or a date string (ISO 8601 or an
// RFC 1123/822 date; an ISO date alone is local midnight in loc). It reports
// false when none applies, and the caller uses the receipt time.
func ReportedDate(v any, loc *time.Location) (float64, bool) {
	if loc == nil {
		loc = time.Local
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		if ms, ok := digitsMillis(x); ok {
			return ms, true
		}
		return parseDate(x, loc)
	}
	return 0, false
}
