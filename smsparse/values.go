package smsparse

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"sentinel-go/jsv"
	"sentinel-go/phone"
)

// BSToAD converts a Bikram Sambat date (year, month 1-12, day) to the
// Gregorian date, reporting false for a date outside its table or an invalid
// day. The month-length table lives in another package that this one may not
// import, so the daemon wires it at start-up. While it is nil, bsDate and
// bsAggreDate values are null (without a parser error: the gap is in the
// program, not in the reporter's message).
var BSToAD func(y, m, d int) (time.Time, bool)

// locale returns the reply locale used to pick labels, "en" by default.
func (o *Options) locale() string {
	if o.Locale != "" {
		return o.Locale
	}
	return "en"
}

// location returns the zone of date values: local midnight of a date is
// taken in it (spec README: date arithmetic uses the local zone).
func (o *Options) location() *time.Location {
	if o.Location != nil {
		return o.Location
	}
	return time.Local
}

// normalizePhone applies the configured normaliser, phone.Normalize with the
// settings by default.
func (o *Options) normalizePhone(raw string) (string, bool) {
	if o.Normalize != nil {
		return o.Normalize(raw)
	}
	return phone.Normalize(raw, o.DefaultCountryCode, o.PhoneValidation)
}

// convert turns the text sent for field f into its value. ok is false when
// the text is not blank but cannot be read as the field's type: the value is
// then null and the caller reports sys.incorrect_type.
func convert(f *Field, raw string, opts *Options) (value any, ok bool) {
	if raw == "" {
		return nil, true
	}
	switch f.Type {
	case "integer", "month", "bsYear", "bsMonth", "bsDay":
		n, ok := parseInt(raw)
		if !ok {
			return nil, false
		}
		if len(f.List) > 0 {
			if label, found := listLabel(f, n, opts); found {
				return label, true
			}
		}
		return n, true
	case "date":
		ms, ok := parseDate(raw, opts.location())
		if !ok {
			return nil, false
		}
		return ms, true
	case "boolean":
		switch strings.ToLower(normalizeDigits(raw)) {
		case "1", "true":
			return true, true
		case "0", "false":
			return false, true
		}
		return nil, false
	case "phone_number":
		n, _ := opts.normalizePhone(raw)
		return n, true
	case "bsDate", "bsAggreDate":
		y, m, d, ok := parseYMD(raw)
		if !ok {
			return nil, false
		}
		return bsToMillis(y, m, d, opts.location())
	default: // string, custom/complex (JSON only) and unknown types: text as is
		s := raw
		if f.Key == "patient_id" || f.Key == "place_id" {
			// Shortcodes are matched as ASCII digits; phones in Nepal
			// type Devanagari ones.
			s = normalizeDigits(s)
		}
		if len(f.List) > 0 {
			if label, found := listLabel(f, s, opts); found {
				return label, true
			}
		}
		return s, true
	}
}

// bsToMillis converts a Bikram Sambat date to epoch ms of local midnight of
// the Gregorian day. With BSToAD unwired the value is null without error.
func bsToMillis(y, m, d int, loc *time.Location) (any, bool) {
	conv := BSToAD
	if conv == nil {
		return nil, true
	}
	t, ok := conv(y, m, d)
	if !ok {
		return nil, false
	}
	ad := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	return float64(ad.UnixMilli()), true
}

// digitValue returns the value of an ASCII or Devanagari digit.
func digitValue(r rune) (int, bool) {
	switch {
	case r >= '0' && r <= '9':
		return int(r - '0'), true
	case r >= '०' && r <= '९': // U+0966..U+096F
		return int(r - '०'), true
	}
	return 0, false
}

// normalizeDigits replaces Devanagari digits with ASCII ones.
func normalizeDigits(s string) string {
	if !hasDevanagariDigit(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r >= '०' && r <= '९' {
			b.WriteByte(byte('0' + r - '०'))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func hasDevanagariDigit(s string) bool {
	for _, r := range s {
		if r >= '०' && r <= '९' {
			return true
		}
	}
	return false
}

// parseInt reads an optionally signed run of (ASCII or Devanagari) digits
// as a JSON number. Anything else, a decimal point included, is not an
// integer.
func parseInt(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	var n float64
	for _, r := range s {
		d, ok := digitValue(r)
		if !ok {
			return 0, false
		}
		n = n*10 + float64(d)
	}
	if math.IsInf(n, 0) {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseYMD reads "Y-M-D" (or with / or . as the separator, used
// consistently; ASCII or Devanagari digits): a 4-digit year, 1-2 digit month
// and day, all positive.
func parseYMD(s string) (y, m, d int, ok bool) {
	s = normalizeDigits(strings.TrimSpace(s))
	sep := strings.IndexAny(s, "-/.")
	if sep < 0 {
		return 0, 0, 0, false
	}
	parts := strings.Split(s, s[sep:sep+1])
	if len(parts) != 3 || len(parts[0]) != 4 {
		return 0, 0, 0, false
	}
	var nums [3]int
	for i, p := range parts {
		if p == "" || len(p) > 4 || (i > 0 && len(p) > 2) {
			return 0, 0, 0, false
		}
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return 0, 0, 0, false
			}
		}
		nums[i], _ = strconv.Atoi(p)
		if nums[i] == 0 {
			return 0, 0, 0, false
		}
	}
	return nums[0], nums[1], nums[2], true
}

// parseDate reads a date value as epoch ms: an ISO date (YYYY-MM-DD) is local
// midnight in loc; an ISO date-time is that instant (local when it has no
// zone).
func parseDate(s string, loc *time.Location) (float64, bool) {
	s = normalizeDigits(strings.TrimSpace(s))
	if y, m, d, ok := parseYMD(s); ok && strings.Count(s, "-") == 2 {
		t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, loc)
		if t.Year() != y || int(t.Month()) != m || t.Day() != d {
			return 0, false // 2024-02-30 does not exist
		}
		return float64(t.UnixMilli()), true
	}
	if t, ok := parseDateTime(s, loc); ok {
		return float64(t.UnixMilli()), true
	}
	return 0, false
}

// dateTimeLayouts are the date-time forms accepted for date values and
// reported dates: ISO 8601 (what JSON clients send) and the RFC forms of
// HTTP and e-mail headers that gateways sometimes pass through.
var dateTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
	time.RFC1123,
	time.RFC1123Z,
	time.RFC850,
	time.RFC822,
	time.RFC822Z,
	time.ANSIC,
}

// parseDateTime reads s with the accepted layouts; layouts without a zone
// are read in loc.
func parseDateTime(s string, loc *time.Location) (time.Time, bool) {
	for _, layout := range dateTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// listLabel maps a value to the label of the matching `list` entry: list
// codes may be written as numbers or strings, so they are compared as
// JavaScript's == does, then (for text) case-insensitively.
func listLabel(f *Field, v any, opts *Options) (string, bool) {
	for _, e := range f.List {
		if jsv.LooseEqual(e[0], v) {
			return resolveLabel(e[1], opts), true
		}
	}
	if s, ok := v.(string); ok {
		for _, e := range f.List {
			if c, ok := e[0].(string); ok && strings.EqualFold(c, s) {
				return resolveLabel(e[1], opts), true
			}
		}
	}
	return "", false
}

// resolveLabel gives the text of a label in the reply locale.
func resolveLabel(label any, opts *Options) string {
	if c := labelTexts(label, opts); len(c) > 0 {
		return c[0]
	}
	if label == nil {
		return ""
	}
	return jsv.String(label)
}

// labelTexts lists the texts a label stands for, best first. A string label
// may be a translation key, so its translation comes first and the string
// itself second; an object label maps locales to texts: the reply locale,
// then English, then the others in locale order (so that a reporter using
// another language's tiny labels is still understood).
func labelTexts(label any, opts *Options) []string {
	switch l := label.(type) {
	case string:
		s := strings.TrimSpace(l)
		if s == "" {
			return nil
		}
		if opts.Translate != nil {
			if t := strings.TrimSpace(opts.Translate(opts.locale(), l)); t != "" && t != s {
				return []string{t, s}
			}
		}
		return []string{s}
	case map[string]any:
		var out []string
		add := func(v any) {
			if s, ok := v.(string); ok {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
		}
		loc := opts.locale()
		add(l[loc])
		if loc != "en" {
			add(l["en"])
		}
		rest := make([]string, 0, len(l))
		for k := range l {
			if k != loc && k != "en" {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		for _, k := range rest {
			add(l[k])
		}
		return out
	}
	return nil
}

// hasPrefixFold reports whether s starts with prefix, comparing runes with
// Unicode simple case folding, and returns the byte length of the prefix in
// s (which may differ from len(prefix) when cases have different widths).
func hasPrefixFold(s, prefix string) (int, bool) {
	i := 0
	for _, pr := range prefix {
		if i >= len(s) {
			return 0, false
		}
		sr, size := utf8.DecodeRuneInString(s[i:])
		if !equalFoldRune(sr, pr) {
			return 0, false
		}
		i += size
	}
	return i, true
}

// equalFoldRune reports whether a and b are equal under simple case folding.
func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// atBoundary reports whether position i of s ends a word: end of text or a
// space follows.
func atBoundary(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsSpace(r)
}
