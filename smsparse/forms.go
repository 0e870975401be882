package smsparse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"sentinel-go/jsv"
)

// Forms holds settings.forms with the key order of each form's `fields`
// preserved. A nil *Forms is valid and holds no form.
type Forms struct {
	byCode map[string]*Form
	codes  []string
}

// Form is one JSON form definition (spec/sms.md §2).
type Form struct {
	// Code is the key of the form in settings.forms (upper case by convention).
	Code string
	// Meta is the form's `meta` object (code, label, translation_key, …).
	Meta map[string]any
	// Fields are the form's fields in the order their keys are written in
	// the JSON: positional formats (compact, muvuku) depend on it.
	Fields []Field
	// PublicForm is the truthy `public_form` flag; absent means not public
	// (the reference's default, see spec/sms.md §2).
	PublicForm bool
	// FacilityReference is the key of the field matched against places'
	// `rc_code`; "" when the form has none.
	FacilityReference string
	// Raw is the whole form definition as decoded JSON.
	Raw map[string]any

	// positional lists the indexes of Fields that take a value in the
	// positional formats: a bsAggreDate field computed from bsYear/bsMonth/
	// bsDay parts is not sent by the reporter, so it takes no position.
	positional []int
	// bsYear, bsMonth, bsDay, bsAggre are indexes of the first field of each
	// type, -1 when absent.
	bsYear, bsMonth, bsDay, bsAggre int
}

// Field is one entry of a form's `fields` object.
type Field struct {
	// Key is the field's key in `fields`; dotted keys nest in the output.
	Key string
	// Type is the declared type (integer, string, date, …); "" when absent.
	Type string
	// Labels is the `labels` object (tiny, short, description, …).
	Labels map[string]any
	// Required is the truthy `required` flag.
	Required bool
	// List holds the `list` entries as [code, label] pairs; labels may be
	// strings (translation keys or text) or {locale: text} objects.
	List [][2]any
	// Raw is the whole field definition as decoded JSON.
	Raw map[string]any
}

// ParseForms reads the raw JSON of app_settings (the bare settings object,
// not the `{"settings": …}` doc) and extracts `forms`. encoding/json maps lose
// key order, so the objects whose order matters are walked with
// json.Decoder tokens. Settings without `forms` give an empty Forms.
func ParseForms(settingsJSON []byte) (*Forms, error) {
	out := &Forms{byCode: map[string]*Form{}}
	// Validate the whole input first: readObject stops at the end of the
	// first value and would not see trailing garbage.
	if !json.Valid(settingsJSON) {
		var v any
		err := json.Unmarshal(settingsJSON, &v)
		return nil, fmt.Errorf("smsparse: settings: invalid JSON: %w", err)
	}
	_, vals, isObj, err := readObject(settingsJSON)
	if err != nil {
		return nil, fmt.Errorf("smsparse: settings: %w", err)
	}
	if !isObj {
		return nil, errors.New("smsparse: settings is not a JSON object")
	}
	rawForms, ok := vals["forms"]
	if !ok {
		return out, nil
	}
	formKeys, formVals, isObj, err := readObject(rawForms)
	if err != nil {
		return nil, fmt.Errorf("smsparse: settings.forms: %w", err)
	}
	if !isObj {
		// forms: null (or another non-object) configures no form.
		return out, nil
	}
	for _, code := range jsKeyOrder(formKeys) {
		form, err := parseForm(code, formVals[code])
		if err != nil {
			return nil, fmt.Errorf("smsparse: form %q: %w", code, err)
		}
		if form == nil {
			continue
		}
		out.byCode[code] = form
		out.codes = append(out.codes, code)
	}
	return out, nil
}

// Get returns the form whose key is exactly code, or nil when absent.
func (f *Forms) Get(code string) *Form {
	if f == nil {
		return nil
	}
	return f.byCode[code]
}

// Codes returns the form codes in settings order.
func (f *Forms) Codes() []string {
	if f == nil {
		return nil
	}
	return append([]string(nil), f.codes...)
}

// parseForm decodes one form definition; a non-object definition is
// skipped (nil form) rather than failing the whole settings.
func parseForm(code string, raw json.RawMessage) (*Form, error) {
	var whole any
	if err := json.Unmarshal(raw, &whole); err != nil {
		return nil, err
	}
	m, ok := whole.(map[string]any)
	if !ok {
		return nil, nil
	}
	form := &Form{Code: code, Raw: m, bsYear: -1, bsMonth: -1, bsDay: -1, bsAggre: -1}
	form.Meta, _ = m["meta"].(map[string]any)
	form.PublicForm = jsv.Truthy(m["public_form"])
	form.FacilityReference, _ = m["facility_reference"].(string)

	// The field order is re-read from the raw bytes: `m` lost it.
	_, formVals, _, err := readObject(raw)
	if err != nil {
		return nil, err
	}
	if rawFields, ok := formVals["fields"]; ok {
		fkeys, _, isObj, err := readObject(rawFields)
		if err != nil {
			return nil, err
		}
		defs, _ := m["fields"].(map[string]any)
		if isObj {
			for _, key := range jsKeyOrder(fkeys) {
				form.Fields = append(form.Fields, newField(key, defs[key]))
			}
		}
	}
	form.index()
	return form, nil
}

// newField builds a Field from its decoded definition.
func newField(key string, def any) Field {
	f := Field{Key: key}
	m, _ := def.(map[string]any)
	f.Raw = m
	if m == nil {
		return f
	}
	f.Type, _ = m["type"].(string)
	f.Labels, _ = m["labels"].(map[string]any)
	f.Required = jsv.Truthy(m["required"])
	for _, e := range jsv.Slice(m["list"]) {
		pair := jsv.Slice(e)
		if len(pair) < 2 {
			continue // not a [code, label] entry
		}
		f.List = append(f.List, [2]any{pair[0], pair[1]})
	}
	return f
}

// index precomputes the positional fields and the Bikram Sambat parts.
func (form *Form) index() {
	for i, f := range form.Fields {
		switch f.Type {
		case "bsYear":
			if form.bsYear < 0 {
				form.bsYear = i
			}
		case "bsMonth":
			if form.bsMonth < 0 {
				form.bsMonth = i
			}
		case "bsDay":
			if form.bsDay < 0 {
				form.bsDay = i
			}
		case "bsAggreDate":
			if form.bsAggre < 0 {
				form.bsAggre = i
			}
		}
	}
	hasParts := form.bsYear >= 0 || form.bsMonth >= 0 || form.bsDay >= 0
	for i, f := range form.Fields {
		if f.Type == "bsAggreDate" && hasParts {
			continue
		}
		form.positional = append(form.positional, i)
	}
}

// readObject walks one valid JSON value. When it is an object it returns
// its keys in written order (a repeated key keeps its first position, as
// JavaScript's JSON.parse does, and its last value) and the raw value of
// each key.
func readObject(data []byte) (keys []string, vals map[string]json.RawMessage, isObj bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, false, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, false, nil
	}
	vals = map[string]json.RawMessage{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, nil, false, err
		}
		key, ok := kt.(string)
		if !ok {
			return nil, nil, false, fmt.Errorf("unexpected token %v", kt)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, false, err
		}
		if _, dup := vals[key]; !dup {
			keys = append(keys, key)
		}
		vals[key] = raw
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, nil, false, err
	}
	return keys, vals, true, nil
}

// jsKeyOrder orders object keys as JavaScript does for a parsed object:
// array-index keys ("0", "1", "42") first in ascending numeric order, then
// the other keys in written order. The reference iterates form fields in
// that order, so a form with numeric field keys parses the same way here.
func jsKeyOrder(keys []string) []string {
	var idx, other []string
	for _, k := range keys {
		if isArrayIndex(k) {
			idx = append(idx, k)
		} else {
			other = append(other, k)
		}
	}
	if len(idx) == 0 {
		return keys
	}
	sort.SliceStable(idx, func(i, j int) bool {
		a, _ := strconv.ParseUint(idx[i], 10, 64)
		b, _ := strconv.ParseUint(idx[j], 10, 64)
		return a < b
	})
	return append(idx, other...)
}

// isArrayIndex reports whether k is a canonical array index (0 … 2^32-2).
func isArrayIndex(k string) bool {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(k, 10, 64)
	return err == nil && n < 1<<32-1
}
