package templates

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// defaultMomentFormat is moment.defaultFormat, used by `format()` without a
// format (CHT passes settings.date_format, which may be unset).
const defaultMomentFormat = "YYYY-MM-DDTHH:mm:ssZ"

// jsSpace is the character class of JavaScript's \s, for regexps that must
// behave like the JS ones they mirror (RE2's \s is ASCII only).
const jsSpace = `[\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}]`

// FormatMoment formats t with a Moment.js format string, as
// `moment(t).locale(locale).format(layout)` does, using t's location for the
// fields and the offset. Supported tokens: YYYY YY Y YYYYY YYYYYY M MM MMM MMMM
// Mo D DD Do DDD DDDD DDDo d do dd ddd dddd e E w ww wo W WW Wo gg gggg GG GGGG
// Q Qo H HH h hh k kk hmm hmmss Hmm Hmmss m mm s ss S..SSSSSSSSS a A Z ZZ z zz
// X x y yy yyyy yo N..NNNNN and the locale formats LT LTS L LL LLL LLLL l ll lll
// llll. `[literal]` and `\x` escape; other letters print as themselves; line
// breaks are dropped, as moment's tokenizer never matches them. Month and day
// names, ordinals, meridiems, long formats and post-formatting (native
// digits, the Arabic comma) come from moment's data for locale (every
// locale of moment 2.30.1, matched as moment matches codes; unknown codes
// format in English). An empty layout means moment's default format.
func FormatMoment(t time.Time, layout, locale string) string {
	return formatMoment(t, layout, lookupLocale(locale))
}

func formatMoment(t time.Time, layout string, l *localeData) string {
	if layout == "" {
		layout = defaultMomentFormat
	}
	layout = expandFormat(layout, l)
	var b strings.Builder
	f := momentFields{t: t, l: l, format: layout}
	for _, tok := range cachedTokens(layout) {
		if s, ok := f.token(tok); ok {
			b.WriteString(s)
		} else {
			b.WriteString(removeFormattingTokens(tok))
		}
	}
	out := b.String()
	if l.postformat != nil {
		out = l.postformat.Replace(out)
	}
	return out
}

// tokenCache keeps tokenized layouts: a deployment has a handful of formats
// and each message formats dates with the same ones.
var tokenCache struct {
	sync.Mutex
	m map[string][]string
}

func cachedTokens(layout string) []string {
	tokenCache.Lock()
	toks, ok := tokenCache.m[layout]
	tokenCache.Unlock()
	if ok {
		return toks
	}
	toks = tokenizeFormat(layout)
	tokenCache.Lock()
	if tokenCache.m == nil || len(tokenCache.m) >= 256 {
		tokenCache.m = map[string][]string{} // bounded: formats come from config, but be safe
	}
	tokenCache.m[layout] = toks
	tokenCache.Unlock()
	return toks
}

// removeFormattingTokens is moment's: a bracketed literal loses its brackets,
// anything else loses its backslashes.
func removeFormattingTokens(tok string) string {
	if i := strings.IndexByte(tok, '['); i >= 0 && i+1 < len(tok) {
		tok = strings.TrimPrefix(tok, "[")
		return strings.TrimSuffix(tok, "]")
	}
	return strings.ReplaceAll(tok, "\\", "")
}

func isLineTerminator(r rune) bool {
	return r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029'
}

// bracketLen returns the length of moment's `\[[^\[]*\]` at the start of s
// (greedy: up to the last "]" before the next "["), or 0.
func bracketLen(s string) int {
	if s == "" || s[0] != '[' {
		return 0
	}
	end := strings.IndexByte(s[1:], '[')
	if end < 0 {
		end = len(s)
	} else {
		end++
	}
	if k := strings.LastIndexByte(s[1:end], ']'); k >= 0 {
		return k + 2
	}
	return 0
}

// countRun counts the leading bytes of s equal to c, up to max.
func countRun(s string, c byte, max int) int {
	n := 0
	for n < len(s) && n < max && s[n] == c {
		n++
	}
	return n
}

// tokenLen matches moment's token alternation at the start of s, in the same
// order as its formattingTokens regexp (first alternative wins, not the
// longest), and returns the token length, or 0 when nothing matches (only a
// line terminator or the end of input).
func tokenLen(s string) int {
	if s == "" {
		return 0
	}
	c := s[0]
	at := func(i int, b byte) bool { return i < len(s) && s[i] == b }
	switch c {
	case 'H', 'h':
		if strings.HasPrefix(s[1:], "mm") {
			if strings.HasPrefix(s[3:], "ss") {
				return 5
			}
			return 3
		}
		return countRun(s, c, 2)
	case 'M':
		if at(1, 'o') {
			return 2
		}
		return countRun(s, 'M', 4)
	case 'D':
		if at(1, 'o') {
			return 2
		}
		if strings.HasPrefix(s, "DDDo") {
			return 4
		}
		return countRun(s, 'D', 4)
	case 'd':
		if n := countRun(s, 'd', 4); n >= 2 {
			return n
		}
		if at(1, 'o') {
			return 2
		}
		return 1
	case 'w', 'W':
		if at(1, 'o') || at(1, '|') || at(1, c) {
			return 2
		}
		return 1
	case 'Q':
		if at(1, 'o') {
			return 2
		}
		return 1
	case 'N':
		return countRun(s, 'N', 5)
	case 'Y':
		switch n := countRun(s, 'Y', 6); {
		case n >= 4:
			return n
		case n >= 2:
			return 2
		}
		return 1 // "." alternative
	case 'y':
		if n := countRun(s, 'y', 4); n >= 2 {
			return n
		}
		if at(1, 'o') {
			return 2
		}
		return 1
	case 'g', 'G':
		switch n := countRun(s, c, 5); {
		case n == 5, n == 4:
			return n
		case n >= 2:
			return 2
		}
		return 1
	case 'k', 'm', 's', 'z', 'Z':
		return countRun(s, c, 2)
	case 'S':
		return countRun(s, 'S', 9)
	}
	r, w := decodeRune(s)
	if isLineTerminator(r) {
		return 0
	}
	return w
}

// tokenizeFormat splits a format like `format.match(formattingTokens)` does:
// bracketed literals, optionally backslash-escaped tokens, single characters;
// line terminators match nothing and are dropped.
func tokenizeFormat(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		if n := bracketLen(s[i:]); n > 0 {
			toks = append(toks, s[i:i+n])
			i += n
			continue
		}
		if s[i] == '\\' {
			if n := tokenLen(s[i+1:]); n > 0 {
				toks = append(toks, s[i:i+1+n])
				i += 1 + n
				continue
			}
		}
		if n := tokenLen(s[i:]); n > 0 {
			toks = append(toks, s[i:i+n])
			i += n
			continue
		}
		_, w := decodeRune(s[i:])
		i += w
	}
	return toks
}

// longTokenLen matches moment's `LTS|LT|LL?L?L?|l{1,4}` at the start of s.
func longTokenLen(s string) int {
	switch {
	case strings.HasPrefix(s, "LTS"):
		return 3
	case strings.HasPrefix(s, "LT"):
		return 2
	case strings.HasPrefix(s, "L"):
		return countRun(s, 'L', 4)
	case strings.HasPrefix(s, "l"):
		return countRun(s, 'l', 4)
	}
	return 0
}

// expandFormat replaces the locale's long-date tokens (LT, LL, l…) by their
// definitions, repeating like moment (at most 6 passes) so that definitions
// that use other long tokens expand too.
func expandFormat(format string, l *localeData) string {
	for pass := 0; pass < 6 && strings.ContainsAny(format, "Ll"); pass++ {
		var b strings.Builder
		changed := false
		for i := 0; i < len(format); {
			if n := bracketLen(format[i:]); n > 0 {
				b.WriteString(format[i : i+n])
				i += n
				continue
			}
			if format[i] == '\\' {
				if n := longTokenLen(format[i+1:]); n > 0 {
					b.WriteString(format[i : i+1+n])
					i += 1 + n
					continue
				}
			}
			if n := longTokenLen(format[i:]); n > 0 {
				if def, ok := l.longDateFormat(format[i : i+n]); ok {
					b.WriteString(def)
					changed = true
				} else {
					b.WriteString(format[i : i+n])
				}
				i += n
				continue
			}
			b.WriteByte(format[i])
			i++
		}
		format = b.String()
		if !changed {
			break
		}
	}
	return format
}

// zeroFill is moment's zeroFill: sign, then the absolute value left-padded
// with zeros to width.
func zeroFill(n, width int, forceSign bool) string {
	abs := n
	sign := ""
	if n < 0 {
		abs = -n
		sign = "-"
	} else if forceSign {
		sign = "+"
	}
	s := strconv.Itoa(abs)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return sign + s
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysInYear(y int) int {
	if isLeap(y) {
		return 366
	}
	return 365
}

// firstWeekOffset, weeksInYear and weekOfYear are moment's week arithmetic
// (src/lib/units/week-calendar-utils.js); dow/doy come from the locale
// (1/4 gives ISO weeks).
func firstWeekOffset(year, dow, doy int) int {
	fwd := 7 + dow - doy
	fwdlw := (7 + int(time.Date(year, time.January, fwd, 0, 0, 0, 0, time.UTC).Weekday()) - dow) % 7
	return -fwdlw + fwd - 1
}

func weeksInYear(year, dow, doy int) int {
	return (daysInYear(year) - firstWeekOffset(year, dow, doy) + firstWeekOffset(year+1, dow, doy)) / 7
}

func weekOfYear(t time.Time, dow, doy int) (week, year int) {
	y := t.Year()
	week = floorDiv(t.YearDay()-firstWeekOffset(y, dow, doy)-1, 7) + 1
	switch {
	case week < 1:
		return week + weeksInYear(y-1, dow, doy), y - 1
	case week > weeksInYear(y, dow, doy):
		return week - weeksInYear(y, dow, doy), y + 1
	}
	return week, y
}

// momentFields evaluates format tokens for one time.
type momentFields struct {
	t      time.Time
	l      *localeData
	format string // the expanded format: some names depend on it (ru, es, el…)
}

// eraYear and era follow moment's global eras: AD from 0001-01-01, BC
// (counted backwards from 1 BC = year 0) before.
func (f *momentFields) eraYear() int {
	y := f.t.Year()
	if y < 1 {
		return 1 - y
	}
	return y
}

func (f *momentFields) era(full bool) string {
	if f.t.Year() >= 1 {
		if full {
			return "Anno Domini"
		}
		return "AD"
	}
	if full {
		return "Before Christ"
	}
	return "BC"
}

func (f *momentFields) offset(sep string) string {
	// V8's getTimezoneOffset drops the seconds of historical offsets
	// (LMT -7:52:58 is 472 minutes), and moment prints that.
	_, secs := f.t.Zone()
	mins := secs / 60
	sign := "+"
	if mins < 0 {
		mins = -mins
		sign = "-"
	}
	return sign + zeroFill(mins/60, 2, false) + sep + zeroFill(mins%60, 2, false)
}

// token returns the value of a formatting token, or false when tok is not a
// token (it is then printed as a literal).
func (f *momentFields) token(tok string) (string, bool) {
	t, l := f.t, f.l
	itoa := strconv.Itoa
	month := int(t.Month())
	wd := int(t.Weekday())
	hour := t.Hour()
	ms := t.Nanosecond() / 1e6
	h12 := hour % 12
	if h12 == 0 {
		h12 = 12
	}
	switch tok {
	case "M":
		return itoa(month), true
	case "MM":
		return zeroFill(month, 2, false), true
	case "Mo":
		return l.ordinal(month, "M"), true
	case "MMM":
		return pick(l.monthsShort, month-1, f.format), true
	case "MMMM":
		return pick(l.months, month-1, f.format), true
	case "Q":
		return itoa((month + 2) / 3), true
	case "Qo":
		return l.ordinal((month+2)/3, "Q"), true
	case "D":
		return itoa(t.Day()), true
	case "DD":
		return zeroFill(t.Day(), 2, false), true
	case "Do":
		return l.ordinal(t.Day(), "D"), true
	case "DDD":
		return itoa(t.YearDay()), true
	case "DDDD":
		return zeroFill(t.YearDay(), 3, false), true
	case "DDDo":
		return l.ordinal(t.YearDay(), "DDD"), true
	case "d":
		return itoa(wd), true
	case "do":
		return l.ordinal(wd, "d"), true
	case "dd":
		return l.weekdaysMin[wd], true
	case "ddd":
		return l.weekdaysShort[wd], true
	case "dddd":
		return pick(l.weekdays, wd, f.format), true
	case "e":
		return itoa((wd + 7 - l.dow) % 7), true
	case "E":
		if wd == 0 {
			return "7", true
		}
		return itoa(wd), true
	case "w", "ww", "wo":
		w, _ := weekOfYear(t, l.dow, l.doy)
		switch tok {
		case "ww":
			return zeroFill(w, 2, false), true
		case "wo":
			return l.ordinal(w, "w"), true
		}
		return itoa(w), true
	case "W", "WW", "Wo":
		w, _ := weekOfYear(t, 1, 4)
		switch tok {
		case "WW":
			return zeroFill(w, 2, false), true
		case "Wo":
			return l.ordinal(w, "W"), true
		}
		return itoa(w), true
	case "gg", "gggg", "ggggg":
		_, y := weekOfYear(t, l.dow, l.doy)
		if tok == "gg" {
			return zeroFill(y%100, 2, false), true
		}
		return zeroFill(y, len(tok), false), true
	case "GG", "GGGG", "GGGGG":
		_, y := weekOfYear(t, 1, 4)
		if tok == "GG" {
			return zeroFill(y%100, 2, false), true
		}
		return zeroFill(y, len(tok), false), true
	case "Y":
		if y := t.Year(); y > 9999 {
			return "+" + itoa(y), true
		}
		return zeroFill(t.Year(), 4, false), true
	case "YY":
		return zeroFill(t.Year()%100, 2, false), true
	case "YYYY", "YYYYY":
		return zeroFill(t.Year(), len(tok), false), true
	case "YYYYYY":
		return zeroFill(t.Year(), 6, true), true
	case "y", "yy", "yyy", "yyyy":
		return zeroFill(f.eraYear(), len(tok), false), true
	case "yo":
		return l.ordinal(f.eraYear(), "y"), true
	case "N", "NN", "NNN", "NNNNN":
		return f.era(false), true
	case "NNNN":
		return f.era(true), true
	case "a":
		return l.meridiem(hour, t.Minute(), true), true
	case "A":
		return l.meridiem(hour, t.Minute(), false), true
	case "H":
		return itoa(hour), true
	case "HH":
		return zeroFill(hour, 2, false), true
	case "h":
		return itoa(h12), true
	case "hh":
		return zeroFill(h12, 2, false), true
	case "k", "kk":
		k := hour
		if k == 0 {
			k = 24
		}
		return zeroFill(k, len(tok), false), true
	case "hmm":
		return itoa(h12) + zeroFill(t.Minute(), 2, false), true
	case "hmmss":
		return itoa(h12) + zeroFill(t.Minute(), 2, false) + zeroFill(t.Second(), 2, false), true
	case "Hmm":
		return itoa(hour) + zeroFill(t.Minute(), 2, false), true
	case "Hmmss":
		return itoa(hour) + zeroFill(t.Minute(), 2, false) + zeroFill(t.Second(), 2, false), true
	case "m":
		return itoa(t.Minute()), true
	case "mm":
		return zeroFill(t.Minute(), 2, false), true
	case "s":
		return itoa(t.Second()), true
	case "ss":
		return zeroFill(t.Second(), 2, false), true
	case "S":
		return itoa(ms / 100), true
	case "SS":
		return zeroFill(ms/10, 2, false), true
	case "SSS", "SSSS", "SSSSS", "SSSSSS", "SSSSSSS", "SSSSSSSS", "SSSSSSSSS":
		v := ms
		for i := 3; i < len(tok); i++ {
			v *= 10
		}
		return zeroFill(v, len(tok), false), true
	case "Z":
		return f.offset(":"), true
	case "ZZ":
		return f.offset(""), true
	case "z", "zz":
		return "", true // zoneAbbr: empty outside moment's UTC mode
	case "X":
		return strconv.FormatInt(int64(floorDiv(int(t.UnixMilli()), 1000)), 10), true
	case "x":
		return strconv.FormatInt(t.UnixMilli(), 10), true
	}
	return "", false
}
