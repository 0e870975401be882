package templates

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// momentData holds one JSON file per Moment.js locale, generated from moment
// itself by scripts/gen-moment-locales.sh (the file format is described
// there). Adding or updating a locale is a change to these files only.
//
//go:embed momentdata/*.json
var momentData embed.FS

// localeData is the part of a Moment.js locale that formatting reads.
// Eras (AD/BC, tokens N and y) are moment's global ones for every locale; ja
// is the only locale with eras of its own (Reiwa, Heisei…), which are not
// supported: its N and y tokens print the Gregorian eras.
type localeData struct {
	code          string
	months        []nameForm
	monthsShort   []nameForm
	weekdays      []nameForm
	weekdaysShort []string
	weekdaysMin   []string
	longDate      map[string]string // LT LTS L LL LLL LLLL l ll lll llll
	ordinals      map[string]ordinalTable
	meridiems     []meridiemSpan
	// postformat replaces characters in the whole output, bracketed
	// literals included (native digits, the Arabic comma); nil when none.
	postformat  *strings.Replacer
	dow, doy    int // first day of week; day of January always in week 1 is 7+dow-doy
	invalidDate string
}

// nameForm is one set of month or weekday names and the test on the format
// string that selects it (moment's format/standalone forms): the first form
// whose re matches is used, the last one (re nil) otherwise.
type nameForm struct {
	names []string
	re    *regexp.Regexp
	// before, when set, limits the test to the format before its first
	// occurrence (el's months).
	before string
}

// ordinalTable gives the ordinal pattern of each number, "%d" standing for
// the number: the exceptions, else def.
type ordinalTable struct {
	def string
	x   map[int]string
}

// meridiemSpan is the meridiem from a minute of the day until the next span.
type meridiemSpan struct {
	from         int
	upper, lower string
}

// pick returns the name i of the form the format selects.
func pick(forms []nameForm, i int, format string) string {
	for _, f := range forms {
		if f.re != nil {
			s := format
			if f.before != "" {
				// JavaScript's substring(0, indexOf(before)): "" when absent.
				s = s[:max(strings.Index(s, f.before), 0)]
			}
			if !f.re.MatchString(s) {
				continue
			}
		}
		if i < len(f.names) {
			return f.names[i]
		}
		return ""
	}
	return ""
}

func (l *localeData) ordinal(n int, period string) string {
	t := l.ordinals[period]
	p, ok := t.x[n]
	if !ok {
		p = t.def
	}
	if p == "" {
		return strconv.Itoa(n)
	}
	return strings.Replace(p, "%d", strconv.Itoa(n), 1)
}

func (l *localeData) meridiem(hour, minute int, lower bool) string {
	m := hour*60 + minute
	var cur meridiemSpan
	for _, s := range l.meridiems {
		if s.from > m {
			break
		}
		cur = s
	}
	if lower {
		return cur.lower
	}
	return cur.upper
}

// localeFile is the JSON form of a locale (scripts/gen-moment-locales.js).
type localeFile struct {
	Code          string            `json:"code"`
	Months        []formFile        `json:"months"`
	MonthsShort   []formFile        `json:"monthsShort"`
	Weekdays      []formFile        `json:"weekdays"`
	WeekdaysShort []string          `json:"weekdaysShort"`
	WeekdaysMin   []string          `json:"weekdaysMin"`
	LongDate      map[string]string `json:"longDate"`
	Ordinals      map[string]struct {
		Def string            `json:"def"`
		X   map[string]string `json:"x"`
	} `json:"ordinals"`
	Meridiem    [][3]any          `json:"meridiem"`
	Postformat  map[string]string `json:"postformat"`
	Dow         int               `json:"dow"`
	Doy         int               `json:"doy"`
	InvalidDate string            `json:"invalidDate"`
}

type formFile struct {
	Names  []string `json:"names"`
	Re     string   `json:"re"`
	Before string   `json:"before"`
}

// jsRegexp compiles a JavaScript regex source of moment's locale data; its
// \s is JavaScript's (Unicode) white space.
func jsRegexp(src string) (*regexp.Regexp, error) {
	return regexp.Compile(strings.ReplaceAll(src, `\s`, jsSpace))
}

func parseLocale(b []byte) (*localeData, error) {
	var f localeFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	l := &localeData{code: f.Code, weekdaysShort: f.WeekdaysShort, weekdaysMin: f.WeekdaysMin,
		longDate: f.LongDate, dow: f.Dow, doy: f.Doy, invalidDate: f.InvalidDate, ordinals: map[string]ordinalTable{}}
	var err error
	for _, x := range []struct {
		in  []formFile
		out *[]nameForm
		n   int
	}{{f.Months, &l.months, 12}, {f.MonthsShort, &l.monthsShort, 12}, {f.Weekdays, &l.weekdays, 7}} {
		for i, ff := range x.in {
			nf := nameForm{names: ff.Names, before: ff.Before}
			if len(ff.Names) != x.n {
				return nil, fmt.Errorf("%s: %d names, want %d", f.Code, len(ff.Names), x.n)
			}
			if ff.Re != "" {
				if nf.re, err = jsRegexp(ff.Re); err != nil {
					return nil, fmt.Errorf("%s: %w", f.Code, err)
				}
			} else if i != len(x.in)-1 {
				return nil, fmt.Errorf("%s: a form without a test before the last", f.Code)
			}
			*x.out = append(*x.out, nf)
		}
		if len(*x.out) == 0 {
			return nil, fmt.Errorf("%s: no names", f.Code)
		}
	}
	if len(l.weekdaysShort) != 7 || len(l.weekdaysMin) != 7 {
		return nil, fmt.Errorf("%s: short weekday names", f.Code)
	}
	for p, t := range f.Ordinals {
		ot := ordinalTable{def: t.Def, x: map[int]string{}}
		for k, v := range t.X {
			n, err := strconv.Atoi(k)
			if err != nil {
				return nil, fmt.Errorf("%s: ordinal %q: %w", f.Code, k, err)
			}
			ot.x[n] = v
		}
		l.ordinals[p] = ot
	}
	for _, m := range f.Meridiem {
		from, ok1 := m[0].(float64)
		upper, ok2 := m[1].(string)
		lower, ok3 := m[2].(string)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("%s: bad meridiem %v", f.Code, m)
		}
		l.meridiems = append(l.meridiems, meridiemSpan{int(from), upper, lower})
	}
	if len(f.Postformat) > 0 {
		var pairs []string
		for from, to := range f.Postformat {
			pairs = append(pairs, from, to)
		}
		l.postformat = strings.NewReplacer(pairs...)
	}
	return l, nil
}

// momentLocales are every embedded locale by code, read once. A file that
// does not load is left out (its code then formats in English);
// TestMomentLocalesLoad fails on it.
var momentLocales = sync.OnceValue(func() map[string]*localeData {
	out := map[string]*localeData{}
	entries, _ := momentData.ReadDir("momentdata")
	for _, e := range entries {
		b, err := momentData.ReadFile(path.Join("momentdata", e.Name()))
		if err != nil {
			continue
		}
		if l, err := parseLocale(b); err == nil {
			out[l.code] = l
		}
	}
	return out
})

// localeEN is moment's global locale, used for unknown codes.
func localeEN() *localeData {
	if l := momentLocales()["en"]; l != nil {
		return l
	}
	return &localeData{code: "en", invalidDate: "Invalid date"} // unreachable with the embedded data
}

// lookupLocale resolves a locale code as `moment().locale(code)` does
// (getLocale, chooseLocale): the code as given; else lower-cased with its
// first "_" read as "-", then ever shorter "-" prefixes ("pt_BR" → "pt-br",
// "FR-fr" → "fr"); nothing found → en, moment's global locale.
func lookupLocale(code string) *localeData {
	all := momentLocales()
	if l, ok := all[code]; ok {
		return l
	}
	parts := strings.Split(strings.ToLower(strings.Replace(code, "_", "-", 1)), "-")
	for j := len(parts); j > 0; j-- {
		if l, ok := all[strings.Join(parts[:j], "-")]; ok {
			return l
		}
	}
	return localeEN()
}

// longDateFormat returns the locale's expansion of an L-family token; the
// lowercase forms (l, ll, lll, llll) are derived from the uppercase ones by
// shortening MMMM, MM, DD and dddd by one letter, as moment does.
func (l *localeData) longDateFormat(key string) (string, bool) {
	if f, ok := l.longDate[key]; ok {
		return f, true
	}
	upper, ok := l.longDate[strings.ToUpper(key)]
	if !ok || key == strings.ToUpper(key) {
		return "", false
	}
	var b strings.Builder
	for _, tok := range tokenizeFormat(upper) {
		switch tok {
		case "MMMM", "MM", "DD", "dddd":
			b.WriteString(tok[1:])
		default:
			b.WriteString(tok)
		}
	}
	return b.String(), true
}
