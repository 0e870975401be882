package templates

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxTimeMs is the ECMAScript time value range (±8.64e15 ms); outside it a
// JS Date, and so a moment, is invalid.
const maxTimeMs = 8.64e15

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

// isJSSpace reports whether r is in JavaScript's \s (WhiteSpace and
// LineTerminator), which String.prototype.trim, Number() and the Mustache.js
// scanner use.
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// ParseDate reads the rendered text of a {{#date}} helper as CHT's
// formatDate does: text that JavaScript's Number() accepts (possibly with
// surrounding spaces) is read with parseInt as epoch milliseconds; otherwise
// moment(text) parses it: "/Date(ms)/", ISO-8601 (date-only and zone-less
// forms are local time in loc, "Z" and ±hh:mm are honoured, any fraction
// digits), RFC 2822, and finally the lenient JavaScript Date fallback
// ("2024-05-01 10:00", "May 1, 2024", "1 May 2024", "05/01/2024",
// "Wed, 01 May 2024 10:00:00 GMT"). ok is false when moment would produce an
// invalid date (then the helper prints "Invalid date"). A nil loc means
// time.Local.
func ParseDate(s string, loc *time.Location) (time.Time, bool) {
	if loc == nil {
		loc = time.Local
	}
	if jsNumeric(s) {
		// formatDate: `if (!isNaN(date)) date = parseInt(date, 10)`; so "1e3"
		// is 1 ms and "" or "  " is NaN (invalid), exactly like the reference.
		ms, ok := jsParseInt(s)
		if !ok {
			return time.Time{}, false
		}
		return fromEpochMs(ms, loc)
	}
	if m := aspNetDate.FindStringSubmatch(s); m != nil {
		ms, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return time.Time{}, false
		}
		return fromEpochMs(ms, loc)
	}
	if t, ok, matched := parseMomentISO(s, loc); matched {
		return t, ok
	}
	if t, ok, matched := parseRFC2822(s, loc); matched {
		return t, ok
	}
	return parseJSDate(s, loc)
}

// jsLocalDate builds a local time as JavaScript's Date does, where
// time.Date makes no promise: a wall time repeated when clocks go back is
// the earlier instant, and one skipped when clocks go forward is read with
// the offset in force before the change (02:30 in a 02:00→03:00 gap is
// 03:30).
func jsLocalDate(y int, mo time.Month, d, h, mi, s, ms int, loc *time.Location) time.Time {
	wall := time.Date(y, mo, d, h, mi, s, ms*1e6, time.UTC)
	t := time.Date(y, mo, d, h, mi, s, ms*1e6, loc)
	_, offNow := t.Zone()
	_, offBefore := t.Add(-6 * time.Hour).Zone()
	_, offAfter := t.Add(6 * time.Hour).Zone()
	var best time.Time
	found := false
	for _, off := range [...]int{offBefore, offNow, offAfter} {
		c := wall.Add(-time.Duration(off) * time.Second).In(loc)
		if wallClock(c).Equal(wall) && (!found || c.Before(best)) {
			best, found = c, true
		}
	}
	if found {
		return best
	}
	return wall.Add(-time.Duration(offBefore) * time.Second).In(loc)
}

// wallClock re-reads t's local date and time as if they were UTC.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func fromEpochMs(ms float64, loc *time.Location) (time.Time, bool) {
	if math.IsNaN(ms) || math.Abs(ms) > maxTimeMs {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)).In(loc), true
}

// jsDecimal is the StrDecimalLiteral grammar of JavaScript's Number().
var jsDecimal = regexp.MustCompile(`^[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$`)

// jsNumeric reports whether JavaScript's Number(s) is not NaN (isNaN(s) is
// false): blank, decimal, Infinity, or unsigned 0x/0o/0b literals.
func jsNumeric(s string) bool {
	s = strings.TrimFunc(s, isJSSpace)
	if s == "" {
		return true
	}
	if len(s) > 2 && s[0] == '0' {
		digits := ""
		switch s[1] {
		case 'x', 'X':
			digits = "0123456789abcdefABCDEF"
		case 'o', 'O':
			digits = "01234567"
		case 'b', 'B':
			digits = "01"
		}
		if digits != "" {
			return strings.Trim(s[2:], digits) == ""
		}
	}
	return jsDecimal.MatchString(s)
}

// jsParseInt is parseInt(s, 10): leading white space, an optional sign, then
// as many decimal digits as there are; no digits is NaN.
func jsParseInt(s string) (float64, bool) {
	s = strings.TrimLeftFunc(s, isJSSpace)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(s[:n], 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// aspNetDate is moment's aspNetJsonRegex.
var aspNetDate = regexp.MustCompile(`(?i)^/?Date\((-?\d+)`)

// moment's ISO-8601 recognizers (src/lib/create/from-string.js).
var (
	isoExtended = regexp.MustCompile(`^` + jsSpace + `*((?:[+-]\d{6}|\d{4})-(?:\d\d-\d\d|W\d\d-\d|W\d\d|\d\d\d|\d\d))(?:(T| )(\d\d(?::\d\d(?::\d\d(?:[.,]\d+)?)?)?)([+-]\d\d(?::?\d\d)?|` + jsSpace + `*Z)?)?$`)
	isoBasic    = regexp.MustCompile(`^` + jsSpace + `*((?:[+-]\d{6}|\d{4})(?:\d\d\d\d|W\d\d\d|W\d\d|\d\d\d|\d\d|))(?:(T| )(\d\d(?:\d\d(?:\d\d(?:[.,]\d+)?)?)?)([+-]\d\d(?::?\d\d)?|` + jsSpace + `*Z)?)?$`)
)

// isoDateForms is moment's isoDates table, tried in order against the date
// part. The regexps are unanchored, as in moment.
var isoDateForms = []struct {
	kind      string
	re        *regexp.Regexp
	allowTime bool
}{
	{"YYYYYY-MM-DD", regexp.MustCompile(`([+-]\d{6})-(\d\d)-(\d\d)`), true},
	{"YYYY-MM-DD", regexp.MustCompile(`(\d{4})-(\d\d)-(\d\d)`), true},
	{"GGGG-[W]WW-E", regexp.MustCompile(`(\d{4})-W(\d\d)-(\d)`), true},
	{"GGGG-[W]WW", regexp.MustCompile(`(\d{4})-W(\d\d)`), false},
	{"YYYY-DDD", regexp.MustCompile(`(\d{4})-(\d{3})`), true},
	{"YYYY-MM", regexp.MustCompile(`(\d{4})-(\d\d)`), false},
	{"YYYYYYMMDD", regexp.MustCompile(`([+-]\d{6})(\d\d)(\d\d)`), true},
	{"YYYYMMDD", regexp.MustCompile(`(\d{4})(\d\d)(\d\d)`), true},
	{"GGGG[W]WWE", regexp.MustCompile(`(\d{4})W(\d\d)(\d)`), true},
	{"GGGG[W]WW", regexp.MustCompile(`(\d{4})W(\d\d)`), false},
	{"YYYYDDD", regexp.MustCompile(`(\d{4})(\d{3})`), true},
	{"YYYYMM", regexp.MustCompile(`(\d{4})(\d\d)`), false},
	{"YYYY", regexp.MustCompile(`(\d{4})`), false},
}

// parseMomentISO is moment's configFromISO followed by its validity checks.
// matched is false when the string is not ISO for moment, so that the next
// parser is tried (moment does the same); ok is false for an ISO string that
// moment marks invalid (overflowing fields, e.g. "2024-02-30").
func parseMomentISO(s string, loc *time.Location) (t time.Time, ok, matched bool) {
	m := isoExtended.FindStringSubmatch(s)
	if m == nil {
		m = isoBasic.FindStringSubmatch(s)
	}
	if m == nil {
		return time.Time{}, false, false
	}
	datePart, timePart, zonePart := m[1], m[3], m[4]
	var kind string
	var parts []string
	allowTime := true
	for _, f := range isoDateForms {
		if p := f.re.FindStringSubmatch(datePart); p != nil {
			kind, parts, allowTime = f.kind, p, f.allowTime
			break
		}
	}
	if kind == "" || (!allowTime && timePart != "") {
		return time.Time{}, false, false
	}
	// An expanded (signed) year only makes sense in the YYYYYY forms; moment
	// misreads the others in ways not worth copying, so call them invalid.
	if (datePart[0] == '+' || datePart[0] == '-') && !strings.HasPrefix(kind, "YYYYYY") {
		return time.Time{}, false, true
	}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }

	year := atoi(parts[1])
	if year == 0 && strings.HasPrefix(parts[1], "-") {
		return time.Time{}, false, true // -000000 is not a year
	}
	month, day := 1, 1
	switch kind {
	case "YYYYYY-MM-DD", "YYYY-MM-DD", "YYYYYYMMDD", "YYYYMMDD":
		month, day = atoi(parts[2]), atoi(parts[3])
	case "YYYY-MM", "YYYYMM":
		month = atoi(parts[2])
	case "YYYY-DDD", "YYYYDDD":
		doy := atoi(parts[2])
		if doy < 1 || doy > daysInYear(year) {
			return time.Time{}, false, true
		}
		day = doy
	case "GGGG-[W]WW-E", "GGGG[W]WWE", "GGGG-[W]WW", "GGGG[W]WW":
		week, weekday := atoi(parts[2]), 1
		if len(parts) > 3 {
			weekday = atoi(parts[3])
		}
		if weekday < 1 || weekday > 7 || week < 1 || week > weeksInYear(year, 1, 4) {
			return time.Time{}, false, true
		}
		// moment's dayOfYearFromWeeks with ISO dow=1, doy=4; time.Date
		// normalises a day-of-year outside the year into the next/previous one.
		day = 1 + 7*(week-1) + (7+weekday-1)%7 + firstWeekOffset(year, 1, 4)
	}
	if kind == "YYYY-MM-DD" || kind == "YYYYYY-MM-DD" || kind == "YYYYMMDD" || kind == "YYYYYYMMDD" || kind == "YYYY-MM" || kind == "YYYYMM" {
		if month < 1 || month > 12 || day < 1 || day > daysIn(year, time.Month(month)) {
			return time.Time{}, false, true
		}
	}

	hour, minute, sec, ms := 0, 0, 0, 0
	if timePart != "" {
		frac := ""
		if i := strings.IndexAny(timePart, ".,"); i >= 0 {
			frac = timePart[i+1:]
			timePart = timePart[:i]
		}
		digits := strings.ReplaceAll(timePart, ":", "")
		hour = atoi(digits[0:2])
		if len(digits) >= 4 {
			minute = atoi(digits[2:4])
		}
		if len(digits) >= 6 {
			sec = atoi(digits[4:6])
		}
		if frac != "" {
			// moment: toInt(('0.' + input) * 1000), i.e. truncated.
			f, _ := strconv.ParseFloat("0."+frac, 64)
			ms = int(f * 1000)
		}
		if hour > 24 || minute > 59 || sec > 59 || (hour == 24 && (minute != 0 || sec != 0 || ms != 0)) {
			return time.Time{}, false, true
		}
	}

	if zonePart == "" {
		t = jsLocalDate(year, time.Month(month), day, hour, minute, sec, ms, loc)
	} else {
		off, ok := isoOffsetMinutes(zonePart)
		if !ok {
			return time.Time{}, false, true
		}
		t = time.Date(year, time.Month(month), day, hour, minute, sec, ms*1e6, time.UTC)
		t = t.Add(-time.Duration(off) * time.Minute).In(loc)
	}
	if math.Abs(float64(t.UnixMilli())) > maxTimeMs {
		return time.Time{}, false, true
	}
	return t, true, true
}

// isoOffsetMinutes is moment's offsetFromString for "Z", "±hh", "±hhmm" and
// "±hh:mm", including its range check (minutes ≤ 59, at most +14:00 and
// -12:00; beyond that the moment is invalid).
func isoOffsetMinutes(z string) (int, bool) {
	z = strings.TrimLeftFunc(z, isJSSpace)
	if z == "" || z == "Z" {
		return 0, true
	}
	digits := strings.ReplaceAll(z[1:], ":", "")
	h, _ := strconv.Atoi(digits[0:2])
	m := 0
	if len(digits) >= 4 {
		m, _ = strconv.Atoi(digits[2:4])
	}
	mins := h*60 + m
	if m > 59 || (z[0] == '+' && mins > 14*60) || (z[0] == '-' && mins > 12*60) {
		return 0, false
	}
	if z[0] == '-' {
		return -mins, true
	}
	return mins, true
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// rfc2822 is moment's RFC 2822 recognizer, applied after its preprocessing.
var rfc2822 = regexp.MustCompile(strings.ReplaceAll(`^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s)?(\d{1,2})\s(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s(\d{2,4})\s(\d\d):(\d\d)(?::(\d\d))?\s(?:(UT|GMT|[ECMP][SD]T)|([Zz])|([+-]\d{4}))$`, `\s`, jsSpace))

var (
	rfcComments = regexp.MustCompile(`\([^()]*\)|[\n\t]`)
	rfcSpaces   = regexp.MustCompile(`(` + jsSpace + jsSpace + `+)`)
)

var rfcZones = map[string]int{"UT": 0, "GMT": 0, "EDT": -4 * 60, "EST": -5 * 60, "CDT": -5 * 60, "CST": -6 * 60, "MDT": -6 * 60, "MST": -7 * 60, "PDT": -7 * 60, "PST": -8 * 60}

var shortMonths = map[string]int{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}
var shortDays = map[string]time.Weekday{"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}

// parseRFC2822 is moment's configFromRFC2822. A weekday that does not match
// the date makes the moment invalid even though the fallback parser runs
// afterwards, so it is reported as matched and invalid.
func parseRFC2822(s string, loc *time.Location) (t time.Time, ok, matched bool) {
	s = rfcComments.ReplaceAllString(s, " ")
	s = rfcSpaces.ReplaceAllString(s, " ")
	s = strings.TrimFunc(s, isJSSpace)
	m := rfc2822.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false, false
	}
	year, _ := strconv.Atoi(m[4])
	switch {
	case year <= 49:
		year += 2000
	case year <= 999:
		year += 1900
	}
	day, _ := strconv.Atoi(m[2])
	hour, _ := strconv.Atoi(m[5])
	minute, _ := strconv.Atoi(m[6])
	sec := 0
	if m[7] != "" {
		sec, _ = strconv.Atoi(m[7])
	}
	month := shortMonths[m[3]]
	if m[1] != "" && time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Weekday() != shortDays[m[1]] {
		return time.Time{}, false, true
	}
	offset := 0
	switch {
	case m[8] != "":
		offset = rfcZones[m[8]]
	case m[9] != "":
		offset = 0
	default:
		hm, _ := strconv.Atoi(m[10])
		offset = hm/100*60 + hm%100
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Add(-time.Duration(offset) * time.Minute)
	return t.In(loc), true, true
}
