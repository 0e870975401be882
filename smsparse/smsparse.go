// Package smsparse turns incoming SMS texts and JSON record submissions into
// the `form`, `fields`, `errors` and `refid` of a data_record, against the
// JSON form definitions of settings.forms (spec/sms.md §1-§3).
//
// Three text formats are understood, all starting with the form code:
//
//   - compact:   "V 12345 feeling better" (values by position, whitespace
//     separated, double quotes group, a last string field takes the rest);
//   - textforms: "V #ID 12345 #N feeling better" (`#`-separated key/value
//     pairs, keys are field keys or tiny labels, case-insensitive);
//   - muvuku:    "1!V!12345#feeling better" (values by position, `#`
//     separated, after a "1!" or "J1!" prefix). Any text with at least two
//     `!` is read this way: its code is the second `!` segment, so what
//     follows the second `!` can only be muvuku values.
//
// Positional formats follow the order in which field keys are written in the
// settings JSON, which is why ParseForms reads the raw JSON itself instead of
// relying on Go maps.
package smsparse

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"sentinel-go/jsv"
)

// Parser error codes (spec/sms.md §3). Replies are chosen by code downstream.
const (
	ErrCodeEmpty         = "sys.empty"
	ErrCodeMissingFields = "sys.missing_fields"
	ErrCodeIncorrectType = "sys.incorrect_type"
	ErrCodeExtraFields   = "extra_fields"
	ErrCodeFormNotFound  = "sys.form_not_found"
)

// Options are the settings and helpers a parse depends on.
type Options struct {
	// Locale picks list and tiny labels; "en" when empty.
	Locale string
	// DefaultCountryCode and PhoneValidation are the settings given to
	// phone.Normalize when Normalize is nil.
	DefaultCountryCode string
	PhoneValidation    string
	// FormsOnlyMode (settings.forms_only_mode) turns an unknown form code
	// into a sys.form_not_found error instead of a plain message.
	FormsOnlyMode bool
	// Normalize normalises phone_number values; nil uses phone.Normalize
	// with DefaultCountryCode and PhoneValidation.
	Normalize func(string) (string, bool)
	// Translate translates a key (list label, tiny label, error code) into
	// locale, returning "" when it has no translation; may be nil.
	Translate func(locale, key string) string
	// Location is the zone of local midnight for date values; nil is
	// time.Local.
	Location *time.Location
}

// Result is the parsed content of a message.
type Result struct {
	// Form is the upper-cased code of the matched form; "" when no
	// configured form matched (a plain message, or an error below).
	Form string
	// Fields are the parsed values by field key; dotted keys nest
	// ({"a.b": 1} becomes {"a": {"b": 1}}). Every field of the form is
	// present, null when not sent. {} for plain messages.
	Fields map[string]any
	// Errors are the parser errors, [] when none: each {code, message}, plus
	// `fields` (the field keys concerned) for sys.missing_fields and
	// sys.incorrect_type.
	Errors []map[string]any
	// Refid is the upper-cased value of the form's facility_reference
	// field, "" when none.
	Refid string
}

// zeroWidth reports the zero-width characters some phones insert
// (U+200B-U+200D, U+FEFF).
func zeroWidth(r rune) bool {
	return (r >= 0x200B && r <= 0x200D) || r == 0xFEFF
}

func stripZeroWidth(s string) string {
	if strings.IndexFunc(s, zeroWidth) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if zeroWidth(r) {
			return -1
		}
		return r
	}, s)
}

// codeDelimiter ends a form code in the non-muvuku formats.
func codeDelimiter(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune("!-,:#", r)
}

// splitCode finds the form code of text. It returns the upper-cased code,
// the rest of the text after the code, and whether the code came from the
// muvuku rule (≥ 2 `!`: the second `!` segment), in which case rest is what
// follows the second `!`.
func splitCode(text string) (code, rest string, muvuku bool) {
	if strings.Count(text, "!") >= 2 {
		first := strings.IndexByte(text, '!')
		second := first + 1 + strings.IndexByte(text[first+1:], '!')
		return strings.ToUpper(strings.TrimSpace(text[first+1 : second])), text[second+1:], true
	}
	t := strings.TrimLeftFunc(text, unicode.IsSpace)
	end := strings.IndexFunc(t, codeDelimiter)
	if end < 0 {
		end = len(t)
	}
	return strings.ToUpper(t[:end]), t[end:], false
}

// FormCode extracts the form code of an SMS text (spec/sms.md §3): with at
// least two `!`, the second `!` segment; else the leading characters up to
// whitespace or one of `! - , : #`; upper-cased. When that code is not a
// configured form, it is retried with zero-width characters removed (and the
// cleaned code is returned), because some keyboards insert them invisibly.
func FormCode(text string, forms *Forms) string {
	code, _, _ := splitCode(text)
	if forms.Get(code) != nil {
		return code
	}
	if clean := stripZeroWidth(text); clean != text {
		code, _, _ = splitCode(clean)
	}
	return code
}

// Parse parses an SMS text (compact, textforms or muvuku format, detected as
// spec/sms.md §3 says) against the forms. It never fails: problems are
// reported in Result.Errors.
func Parse(text string, forms *Forms, opts Options) Result {
	res := Result{Fields: map[string]any{}, Errors: []map[string]any{}}
	if strings.TrimFunc(text, func(r rune) bool { return unicode.IsSpace(r) || zeroWidth(r) }) == "" {
		res.Errors = append(res.Errors, parserError(ErrCodeEmpty, nil, &opts))
		return res
	}
	code, rest, muvuku := splitCode(text)
	form := forms.Get(code)
	if form == nil {
		// Retry without zero-width characters; the values are then read
		// from the cleaned text too, so that an invisible character does
		// not break an integer.
		if clean := stripZeroWidth(text); clean != text {
			code, rest, muvuku = splitCode(clean)
			form = forms.Get(code)
		}
	}
	if form == nil {
		if opts.FormsOnlyMode {
			res.Errors = append(res.Errors, parserError(ErrCodeFormNotFound, nil, &opts))
		}
		return res
	}
	res.Form = code

	p := parser{form: form, opts: &opts, values: make([]any, len(form.Fields)), sent: make([]bool, len(form.Fields))}
	switch {
	case muvuku:
		p.muvuku(rest)
	default:
		rest = skipCodeDelimiter(rest)
		if strings.Contains(rest, "#") || p.startsWithLabel(rest) {
			p.textforms(rest)
		} else {
			p.compact(rest)
		}
	}
	p.combineBS()
	res.Fields, res.Refid = p.output()
	res.Errors = p.errors()
	return res
}

// skipCodeDelimiter drops the single punctuation character that may end the
// code ("V-123", "V:123") and the spaces around the first value.
func skipCodeDelimiter(rest string) string {
	if rest != "" && strings.ContainsRune("!-,:", rune(rest[0])) {
		rest = rest[1:]
	}
	return strings.TrimLeftFunc(rest, unicode.IsSpace)
}

// parser accumulates the values of one message.
type parser struct {
	form   *Form
	opts   *Options
	values []any  // converted value by field index
	sent   []bool // whether a value (even blank) was sent for the field
	wrong  []int  // fields whose text had the wrong type
	extra  bool   // muvuku values beyond the last field
	labels []keyLabel
}

// keyLabel is a textforms key (a field key or label) and its field.
type keyLabel struct {
	text  string
	field int
}

// set converts and stores the text of field i.
func (p *parser) set(i int, raw string) {
	v, ok := convert(&p.form.Fields[i], raw, p.opts)
	if !ok {
		p.wrong = append(p.wrong, i)
	}
	p.values[i] = v
	p.sent[i] = true
}

// compact reads whitespace-separated values in field order. A double-quoted
// group is one value; the last field, when it is a string, takes the rest of
// the text so that free text needs no quotes. Surplus values are ignored.
func (p *parser) compact(s string) {
	pos := p.form.positional
	i := 0
	for n, fi := range pos {
		i = skipSpace(s, i)
		if i >= len(s) {
			break
		}
		if n == len(pos)-1 && p.form.Fields[fi].Type == "string" {
			p.set(fi, unquoteWhole(strings.TrimRightFunc(s[i:], unicode.IsSpace)))
			return
		}
		var tok string
		tok, i = nextToken(s, i)
		p.set(fi, tok)
	}
}

// skipSpace returns the index of the first non-space rune at or after i.
func skipSpace(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}

// nextToken reads one compact value starting at i (not a space): a
// double-quoted group without its quotes (to the end when unterminated), or
// the characters up to the next space.
func nextToken(s string, i int) (string, int) {
	if s[i] == '"' {
		end := strings.IndexByte(s[i+1:], '"')
		if end < 0 {
			return s[i+1:], len(s)
		}
		return s[i+1 : i+1+end], i + end + 2
	}
	j := i
	for j < len(s) {
		r, size := utf8.DecodeRuneInString(s[j:])
		if unicode.IsSpace(r) {
			break
		}
		j += size
	}
	return s[i:j], j
}

// unquoteWhole removes the quotes of a text that is exactly one quoted group.
func unquoteWhole(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && strings.IndexByte(s[1:len(s)-1], '"') < 0 {
		return s[1 : len(s)-1]
	}
	return s
}

// muvuku reads `#`-separated values in field order; values beyond the
// fields raise extra_fields (trailing empty values, e.g. from a final `#`,
// do not).
func (p *parser) muvuku(s string) {
	parts := strings.Split(s, "#")
	for len(parts) > 0 && strings.TrimSpace(parts[len(parts)-1]) == "" {
		parts = parts[:len(parts)-1]
	}
	pos := p.form.positional
	for n, part := range parts {
		if n >= len(pos) {
			p.extra = true
			break
		}
		p.set(pos[n], strings.TrimSpace(part))
	}
}

// keyTable builds the textforms keys, best first: field keys, then tiny
// labels, then short labels (accepted too because a text starting with a
// short label is read as textforms). A key already taken by an earlier field
// or a better kind is not reassigned. Longer keys are tried first so that
// "notes" is not read as the tiny label "n" followed by "otes".
func (p *parser) keyTable() []keyLabel {
	if p.labels != nil {
		return p.labels
	}
	seen := map[string]bool{}
	var out []keyLabel
	add := func(text string, fi int) {
		k := strings.ToLower(strings.TrimSpace(text))
		if k == "" || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, keyLabel{text: strings.TrimSpace(text), field: fi})
	}
	for fi, f := range p.form.Fields {
		add(f.Key, fi)
	}
	for _, kind := range []string{"tiny", "short"} {
		for fi, f := range p.form.Fields {
			for _, t := range labelTexts(f.Labels[kind], p.opts) {
				add(t, fi)
			}
		}
	}
	// Stable: equal lengths keep their priority.
	sortByLenDesc(out)
	p.labels = out
	return out
}

func sortByLenDesc(ks []keyLabel) {
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && utf8.RuneCountInString(ks[j].text) > utf8.RuneCountInString(ks[j-1].text); j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
}

// matchKey finds the key a textforms pair starts with; it returns the field
// index (-1 when unknown) and the value text after the key.
func (p *parser) matchKey(pair string) (int, string) {
	for _, k := range p.keyTable() {
		if n, ok := hasPrefixFold(pair, k.text); ok && atBoundary(pair, n) {
			return k.field, strings.TrimSpace(pair[n:])
		}
	}
	return -1, ""
}

// startsWithLabel reports whether the text after the code starts with a
// field's tiny or short label: such a message is textforms even without `#`.
func (p *parser) startsWithLabel(s string) bool {
	for fi := range p.form.Fields {
		for _, kind := range []string{"tiny", "short"} {
			for _, t := range labelTexts(p.form.Fields[fi].Labels[kind], p.opts) {
				if n, ok := hasPrefixFold(s, t); ok && atBoundary(s, n) {
					return true
				}
			}
		}
	}
	return false
}

// textforms reads `#`-separated "key value" pairs. Unknown keys are ignored;
// a key sent several times collects its values in an array, in order.
func (p *parser) textforms(s string) {
	raw := make([][]string, len(p.form.Fields))
	for _, pair := range strings.Split(s, "#") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		fi, val := p.matchKey(pair)
		if fi < 0 {
			continue
		}
		raw[fi] = append(raw[fi], val)
	}
	for fi, vals := range raw {
		switch len(vals) {
		case 0:
		case 1:
			p.set(fi, vals[0])
		default:
			arr := make([]any, len(vals))
			for n, v := range vals {
				p.set(fi, v)
				arr[n] = p.values[fi]
			}
			p.values[fi] = arr
		}
	}
}

// combineBS computes the bsAggreDate field from the bsYear, bsMonth and
// bsDay fields (month and day default to 1) when the form has both.
func (p *parser) combineBS() {
	f := p.form
	if f.bsAggre < 0 || f.bsYear < 0 || p.sent[f.bsAggre] {
		return
	}
	year, ok := p.values[f.bsYear].(float64)
	if !ok {
		return
	}
	part := func(i int) int {
		if i < 0 {
			return 1
		}
		if v, ok := p.values[i].(float64); ok {
			return int(v)
		}
		return 1
	}
	v, ok := bsToMillis(int(year), part(f.bsMonth), part(f.bsDay), p.opts.location())
	if !ok {
		p.wrong = append(p.wrong, f.bsAggre)
	}
	p.values[f.bsAggre] = v
}

// output nests the values by dotted key and reads the refid.
func (p *parser) output() (map[string]any, string) {
	fields := make(map[string]any, len(p.values))
	refid := ""
	for i, f := range p.form.Fields {
		v := p.values[i]
		// Later keys win when "a" and "a.b" collide, as assignments would.
		jsv.Set(fields, f.Key, v)
		if f.Key == p.form.FacilityReference && v != nil {
			refid = strings.ToUpper(jsv.String(v))
		}
	}
	return fields, refid
}

// errors lists the parser errors: missing required fields, values of the
// wrong type, surplus muvuku values. A field whose value had the wrong type
// is reported as such, not also as missing.
func (p *parser) errors() []map[string]any {
	errs := []map[string]any{}
	var missing, wrong []any
	isWrong := make(map[int]bool, len(p.wrong))
	for _, i := range p.wrong {
		if !isWrong[i] {
			isWrong[i] = true
			wrong = append(wrong, p.form.Fields[i].Key)
		}
	}
	for i, f := range p.form.Fields {
		if f.Required && p.values[i] == nil && !isWrong[i] {
			missing = append(missing, f.Key)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, parserError(ErrCodeMissingFields, missing, p.opts))
	}
	if len(wrong) > 0 {
		errs = append(errs, parserError(ErrCodeIncorrectType, wrong, p.opts))
	}
	if p.extra {
		errs = append(errs, parserError(ErrCodeExtraFields, nil, p.opts))
	}
	return errs
}

// defaultErrorMessages are used when no translation is available: the
// errors[] contract drops entries without a message.
var defaultErrorMessages = map[string]string{
	ErrCodeEmpty:         "The message is empty.",
	ErrCodeMissingFields: "Some required fields are missing.",
	ErrCodeIncorrectType: "Some fields have a value of the wrong type.",
	ErrCodeExtraFields:   "The message has more values than the form has fields.",
	ErrCodeFormNotFound:  "The form code was not recognised.",
}

// parserError builds one errors[] entry; its message is the translation of
// the code when there is one.
func parserError(code string, fields []any, opts *Options) map[string]any {
	msg := ""
	if opts.Translate != nil {
		if t := opts.Translate(opts.locale(), code); t != code {
			msg = t
		}
	}
	if msg == "" {
		msg = defaultErrorMessages[code]
	}
	e := map[string]any{"code": code, "message": msg}
	if fields != nil {
		e["fields"] = fields
	}
	return e
}
