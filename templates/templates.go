// Package templates renders outgoing-message templates the way CHT Sentinel
// does: Mustache.js (v4) with HTML escaping turned off, over a layered
// context, with CHT's helper lambdas ({{#date}}, {{#datetime}},
// {{#bikram_sambat_date}}, {{#local_phone}}) and Moment.js date parsing and
// formatting.
//
// Config authors wrote their templates against Mustache.js and Moment.js, so
// this package reproduces their behaviour rather than Go's conventions.
//
// Why a renderer of our own instead of github.com/cbroglie/mustache: the
// reference's observable behaviour depends on Mustache.js details that
// cbroglie implements differently, and preparing the context cannot fix all
// of them: section truthiness is JavaScript's (" " and "0" are true; 0, ""
// and [] false), dotted names index arrays ("new_reports.0.contact.name") and
// strings ("name.length"), a dotted name that does not resolve in an inner
// section falls back to outer ones, lambdas receive the raw section text and
// CHT's helpers render it again against the root view, values print with
// JavaScript's String() (numbers, arrays joined by ","), and white space is
// stripped from "standalone" tag lines exactly as Mustache.js does. A port of
// Mustache.js's own parser and writer (parse.go and the renderer below, a few
// hundred lines) is simpler to get right than a context-rewriting layer over
// another engine, and its parse errors carry Mustache.js's messages
// (Unclosed section "x" at 12), which end up in the doc's errors.
//
// The behaviour was checked differentially against the public libraries the
// spec names (mustache.js 4.2.0 with escaping off, moment 2.31.0 and
// bikram-sambat 1.8.1 under node, several time zones) on tens of thousands of
// generated templates and date strings; the golden cases in testdata/render
// hold those libraries' output. The helpers follow messages.md §4.2. Dates
// are formatted with the locale data of moment 2.30.1 (the version the
// reference ships), generated from moment itself into momentdata/ with the
// goldens of testdata/moment (scripts/gen-moment-locales.sh).
// Third-party notices (mustache.js and Moment.js: MIT; bikram-sambat:
// Apache-2.0) are in THIRD_PARTY_NOTICES.md at the repository root.
//
// Deliberate differences: a render is bounded (work and output size, see
// ErrTooLarge) so that a hostile template cannot stall the daemon; functions
// are never context values here, so a helper name used as a plain tag
// ({{date}}) prints nothing where Mustache.js prints the function's source;
// properties inherited from JavaScript's Object.prototype ({{constructor}},
// {{toString}}) do not exist; a lone UTF-16 surrogate ({{s.5}} inside an
// emoji) prints as U+FFFD.
package templates

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"sentinel-go/jsv"
)

// Options are per-render settings taken from app_settings.
type Options struct {
	// DateFormat is settings.date_format, used by {{#date}}; "" means
	// moment's default "YYYY-MM-DDTHH:mm:ssZ", as with an unset setting.
	DateFormat string
	// DateTimeFormat is settings.reported_date_format, used by
	// {{#datetime}}; "" means the same default.
	DateTimeFormat string
	// Locale is the message locale; it picks moment's locale data (every
	// locale of moment 2.30.1, matched as moment matches codes; others
	// format in English).
	Locale string
	// DefaultCountryCode is settings.default_country_code (e.g. "254"),
	// stripped with its "+" by {{#local_phone}}; "" strips nothing.
	DefaultCountryCode string
	// Location is the zone dates are read and printed in; nil means
	// time.Local (the reference uses the process zone, TZ).
	Location *time.Location
}

// Limits on one render. Real SMS templates are far below them; they only
// stop pathological templates (nested iteration over large lists) from
// tying up a worker. maxVisits is a variable so that the fuzz test can make
// each execution cheap.
var maxVisits = 1 << 18 // nodes rendered, lambdas included

const (
	helperCost = 64      // visits charged per helper call: parsing and formatting a date costs ~1µs
	maxOutput  = 1 << 22 // bytes produced
)

// ErrTooLarge is returned when a render exceeds the package's work or output
// bounds, which only a pathological template over large data can do.
var ErrTooLarge = errors.New("template render too large")

// Check parses a template and returns its parse error, with Mustache.js's
// message (for config validation), or nil when it parses.
func Check(tmpl string) error {
	_, err := parseCached(tmpl)
	return err
}

// Render renders a Mustache template with Mustache.js semantics over a
// layered context. layers[0] wins over layers[1] and so on for top-level
// keys: the first layer that has the key with a non-nil value provides it
// (undefined and JSON null both count as "not defined", as lodash's
// _.defaults chain of the reference does for undefined). Values are
// JSON-like (map[string]any, []any, float64, string, bool, nil; other Go
// numbers, maps with string keys and slices are accepted too). The helpers
// date, datetime, bikram_sambat_date and local_phone hide top-level keys of
// the same name and, like the reference, render their section text against
// the top-level context, not the enclosing section. Errors, all of which the
// reference raises too: template parse errors (also for a helper's section
// text), the TypeError Mustache.js hits when a plain name is looked up while
// iterating over a null element, bikram_sambat_date on an unparsable date or
// one outside its table; and ErrTooLarge.
func Render(tmpl string, layers []map[string]any, opts Options) (string, error) {
	nodes, err := parseCached(tmpl)
	if err != nil {
		return "", err
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	r := &renderer{root: &rootView{layers: layers}, opts: opts, locale: lookupLocale(opts.Locale)}
	var b strings.Builder
	if err := r.render(&b, nodes, []any{r.root}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// helper identifies one of CHT's built-in section lambdas.
type helper uint8

const (
	helperDate helper = iota + 1
	helperDatetime
	helperBikramSambat
	helperLocalPhone
)

var helpers = map[string]helper{
	"date":               helperDate,
	"datetime":           helperDatetime,
	"bikram_sambat_date": helperBikramSambat,
	"local_phone":        helperLocalPhone,
}

// rootView is the top of the context stack: the layers merged lazily (no
// copy per render) plus the helpers, like the reference's
// `{...view, ...helpers}`.
type rootView struct {
	layers []map[string]any
}

func (v *rootView) get(key string) (any, bool) {
	if h, ok := helpers[key]; ok {
		return h, true
	}
	found := false
	for _, l := range v.layers {
		if x, ok := l[key]; ok {
			found = true
			if x != nil {
				return toJS(x), true
			}
		}
	}
	return nil, found
}

type renderer struct {
	root   *rootView
	opts   Options
	locale *localeData
	visits int
}

// render writes nodes with the given context stack (innermost last).
func (r *renderer) render(b *strings.Builder, nodes []*node, stack []any) error {
	for _, n := range nodes {
		r.visits++
		if r.visits > maxVisits || b.Len() > maxOutput {
			return ErrTooLarge
		}
		switch n.kind {
		case nodeText:
			b.WriteString(n.text)
		case nodeValue:
			v, err := r.lookup(stack, n)
			if err != nil {
				return err
			}
			if v != nil {
				writeJSString(b, v)
			}
		case nodeSection:
			v, err := r.lookup(stack, n)
			if err != nil {
				return err
			}
			if !truthy(v) {
				continue
			}
			switch x := v.(type) {
			case []any:
				for _, e := range x {
					if err := r.render(b, n.children, append(stack, toJS(e))); err != nil {
						return err
					}
				}
			case helper:
				s, err := r.callHelper(x, n)
				if err != nil {
					return err
				}
				b.WriteString(s)
			case bool: // true: render in the same context
				if err := r.render(b, n.children, stack); err != nil {
					return err
				}
			default: // objects, strings and numbers become the context
				if err := r.render(b, n.children, append(stack, v)); err != nil {
					return err
				}
			}
		case nodeInverted:
			v, err := r.lookup(stack, n)
			if err != nil {
				return err
			}
			if list, ok := v.([]any); (ok && len(list) == 0) || !truthy(v) {
				if err := r.render(b, n.children, stack); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// lookup is Mustache.js's Context.lookup: "." is the current view; other
// names are searched from the innermost context outwards. A dotted name is
// resolved entirely within each context and only counts as found there when
// its last property exists. Like Mustache.js, a plain name looked up in a
// null context (iterating a list that holds null) is a TypeError.
func (r *renderer) lookup(stack []any, n *node) (any, error) {
	if n.text == "." {
		return stack[len(stack)-1], nil
	}
	for i := len(stack) - 1; i >= 0; i-- {
		view := stack[i]
		if n.path != nil {
			v := view
			for j, seg := range n.path {
				if v == nil {
					break
				}
				next, ok := getProp(v, seg)
				if j == len(n.path)-1 && ok {
					return next, nil
				}
				v = next
			}
			continue
		}
		if view == nil {
			return nil, fmt.Errorf("Cannot read properties of null (reading '%s')", n.text)
		}
		if !isObject(view) {
			continue
		}
		if v, ok := getProp(view, n.text); ok {
			return v, nil
		}
	}
	return nil, nil
}

func isObject(v any) bool {
	switch v.(type) {
	case map[string]any, []any, *rootView:
		return true
	}
	return false
}

// getProp reads a property the JavaScript way: object keys, array indexes
// (canonical decimal only, as JS property keys) and length, string indexes
// (UTF-16 units) and length.
func getProp(v any, key string) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		e, ok := x[key]
		return toJS(e), ok
	case *rootView:
		return x.get(key)
	case []any:
		if key == "length" {
			return float64(len(x)), true
		}
		if i, ok := arrayIndex(key); ok && i < len(x) {
			return toJS(x[i]), true
		}
	case string:
		if key == "length" {
			return float64(utf16Len(x)), true
		}
		if i, ok := arrayIndex(key); ok {
			u := utf16.Encode([]rune(x))
			if i < len(u) {
				return string(utf16.Decode(u[i : i+1])), true
			}
		}
	}
	return nil, false
}

// arrayIndex parses a canonical array index ("0", "12"; not "01" or "+1").
func arrayIndex(key string) (int, bool) {
	if key == "" || len(key) > 9 || (len(key) > 1 && key[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(key); i++ {
		if key[i] < '0' || key[i] > '9' {
			return 0, false
		}
		n = n*10 + int(key[i]-'0')
	}
	return n, true
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// toJS normalises a context value to the JSON-like set the renderer works
// on. Callers build contexts from decoded JSON, but Go-built values (ints,
// map[string]string, []map[string]any…) are accepted too.
func toJS(v any) any {
	switch x := v.(type) {
	case nil, string, float64, bool, map[string]any, []any, helper, *rootView:
		return v
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case float32:
		return float64(x)
	case uint:
		return float64(x)
	case uint64:
		return float64(x)
	case uint32:
		return float64(x)
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return toJS(rv.Elem().Interface())
	case reflect.Int, reflect.Int8, reflect.Int16:
		return float64(rv.Int())
	case reflect.Uint8, reflect.Uint16, reflect.Uintptr:
		return float64(rv.Uint())
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return map[string]any{}
		}
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			out[it.Key().String()] = it.Value().Interface()
		}
		return out
	}
	// Structs, funcs, channels: an opaque object, like a JS object without
	// enumerable JSON properties.
	return map[string]any{}
}

// truthy is JavaScript's ToBoolean for context values.
func truthy(v any) bool {
	switch x := v.(type) {
	case helper, *rootView:
		return true
	case float64:
		return x != 0 && !math.IsNaN(x)
	}
	return jsv.Truthy(v)
}

// writeJSString writes String(v): numbers the JavaScript way, arrays joined
// with "," (null elements empty), objects as "[object Object]".
func writeJSString(b *strings.Builder, v any) {
	switch x := v.(type) {
	case string:
		b.WriteString(x)
	case float64:
		b.WriteString(jsv.NumberString(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case []any:
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if e = toJS(e); e != nil {
				writeJSString(b, e)
			}
		}
	case map[string]any, *rootView:
		b.WriteString("[object Object]")
	}
}

// callHelper runs one of CHT's lambdas. Like the reference, it renders the
// raw section text again from the root view (not the current section
// context), then transforms the result.
func (r *renderer) callHelper(h helper, n *node) (string, error) {
	r.visits += helperCost
	tree, err := n.innerNodes()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := r.render(&b, tree, []any{r.root}); err != nil {
		return "", err
	}
	text := b.String()
	loc := r.opts.Location
	switch h {
	case helperDate, helperDatetime:
		layout := r.opts.DateFormat
		if h == helperDatetime {
			layout = r.opts.DateTimeFormat
		}
		t, ok := ParseDate(text, loc)
		if !ok {
			return r.locale.invalidDate, nil
		}
		return formatMoment(t.In(loc), layout, r.locale), nil
	case helperBikramSambat:
		// The reference formats the date as YYYY-MM-DD in the local zone and
		// converts that calendar date; an invalid date makes it throw.
		t, ok := ParseDate(text, loc)
		return bikramSambat(t, ok, loc)
	case helperLocalPhone:
		phone := strings.TrimFunc(text, isJSSpace)
		if cc := r.opts.DefaultCountryCode; cc != "" {
			phone = strings.TrimPrefix(phone, "+"+cc)
		}
		return phone, nil
	}
	return "", nil
}
