package recur

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// textSched is one schedule of a text expression: the allowed values of each
// time period (a zero mask: not restricted).
type textSched struct {
	sec, min, hour uint64 // bit v: value v allowed
	tod            []int  // allowed seconds of the day, ascending (nil: not restricted)
	dom            uint64 // bits 1..31; bit domLast: the month's last day
	dow            uint64 // bits by time.Weekday (0 = Sunday)
	month          uint64 // bits 1..12
	// effective masks, with the "finer periods at their start" rule applied
	effSec, effMin, effHour, effDom uint64
}

const domLast = 32

// period levels, finest first
const (
	lvSecond = iota
	lvMinute
	lvHour
	lvDay
	lvMonth
	lvNone
)

func allBits(lo, hi int) uint64 {
	var m uint64
	for v := lo; v <= hi; v++ {
		m |= 1 << uint(v)
	}
	return m
}

// finish computes the effective masks; an error when nothing is restricted
// or the schedule can never fire.
func (t *textSched) finish() error {
	finest := lvNone
	switch {
	case t.sec != 0 || t.tod != nil:
		finest = lvSecond
	case t.min != 0:
		finest = lvMinute
	case t.hour != 0:
		finest = lvHour
	case t.dom != 0 || t.dow != 0:
		finest = lvDay
	case t.month != 0:
		finest = lvMonth
	}
	if finest == lvNone {
		return fmt.Errorf("nothing to schedule")
	}
	eff := func(mask uint64, level, hi int) uint64 {
		switch {
		case mask != 0:
			return mask
		case level >= finest:
			return allBits(0, hi)
		default:
			return 1 // the period's start only
		}
	}
	t.effSec = eff(t.sec, lvSecond, 59)
	t.effMin = eff(t.min, lvMinute, 59)
	t.effHour = eff(t.hour, lvHour, 23)
	t.effDom = t.dom
	if finest == lvMonth {
		t.effDom = 1 << 1 // only months restricted: the 1st
	}
	any := false
	t.eachTime(86399, func(int) bool { any = true; return true })
	if !any {
		return fmt.Errorf("the times of day given exclude each other: it never fires")
	}
	// Some day in 28 years (a full leap/weekday cycle) must match.
	d := time.Date(2000, time.January, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 28*366; i++ {
		if t.dayMatches(d) {
			return nil
		}
		d = d.AddDate(0, 0, 1)
	}
	return fmt.Errorf("the days given exclude each other: it never fires")
}

// dayMatches checks the day-level restrictions on civil date d.
func (t *textSched) dayMatches(d time.Time) bool {
	y, m, day := d.Date()
	if t.month != 0 && t.month&(1<<uint(m)) == 0 {
		return false
	}
	if t.dow != 0 && t.dow&(1<<uint(d.Weekday())) == 0 {
		return false
	}
	if t.effDom != 0 {
		ok := t.effDom&(1<<uint(day)) != 0
		if !ok && t.effDom&(1<<domLast) != 0 {
			ok = day == time.Date(y, m+1, 0, 12, 0, 0, 0, time.UTC).Day()
		}
		if !ok {
			return false
		}
	}
	return true
}

// eachTime calls fn with the allowed seconds of the day not after limit, in
// descending order, until fn returns true.
func (t *textSched) eachTime(limit int, fn func(sod int) bool) {
	if t.tod != nil {
		for i := len(t.tod) - 1; i >= 0; i-- {
			v := t.tod[i]
			if v > limit {
				continue
			}
			h, m, s := v/3600, v/60%60, v%60
			if t.effHour&(1<<uint(h)) == 0 || t.effMin&(1<<uint(m)) == 0 || t.effSec&(1<<uint(s)) == 0 {
				continue
			}
			if fn(v) {
				return
			}
		}
		return
	}
	lh := limit / 3600
	for h := min(lh, 23); h >= 0; h-- {
		if t.effHour&(1<<uint(h)) == 0 {
			continue
		}
		mStart := 59
		if h == lh {
			mStart = limit / 60 % 60
		}
		for m := mStart; m >= 0; m-- {
			if t.effMin&(1<<uint(m)) == 0 {
				continue
			}
			sStart := 59
			if h == lh && m == limit/60%60 {
				sStart = limit % 60
			}
			for s := sStart; s >= 0; s-- {
				if t.effSec&(1<<uint(s)) == 0 {
					continue
				}
				if fn(h*3600 + m*60 + s) {
					return
				}
			}
		}
	}
}

// latest is Schedule.Latest for one text schedule; a and n are in the
// schedule's location and a < n.
func (t *textSched) latest(a, n time.Time) (time.Time, bool) {
	loc := n.Location()
	ny, nm, nd := n.Date()
	ay, am, ad := a.Date()
	day := time.Date(ny, nm, nd, 12, 0, 0, 0, time.UTC)
	first := time.Date(ay, am, ad, 12, 0, 0, 0, time.UTC)
	for ; !day.Before(first); day = day.AddDate(0, 0, -1) {
		if !t.dayMatches(day) {
			continue
		}
		limit := 86399
		if day.Year() == ny && day.Month() == nm && day.Day() == nd {
			limit = n.Hour()*3600 + n.Minute()*60 + n.Second()
		}
		y, m, d := day.Date()
		var res time.Time
		done, ok := false, false
		t.eachTime(limit, func(sod int) bool {
			h, mi, s := sod/3600, sod/60%60, sod%60
			c := time.Date(y, m, d, h, mi, s, 0, loc)
			if c.Day() != d || c.Hour() != h || c.Minute() != mi || c.Second() != s {
				return false // does not exist that day (DST gap)
			}
			if c.After(n) {
				return false
			}
			if !c.After(a) {
				done = true
				return true
			}
			res, ok, done = c, true, true
			return true
		})
		if done {
			return res, ok
		}
	}
	return time.Time{}, false
}

// ---- parser ----

type tokKind int

const (
	tWord tokKind = iota
	tNum          // integer, ordinal flag when suffixed st/nd/rd/th
	tTime         // H:MM[:SS]
	tComma
)

type token struct {
	kind    tokKind
	text    string
	n       int // tNum value; tTime seconds of day (before am/pm)
	ordinal bool
	hasSec  bool
	pos     int
}

func tokenize(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ',':
			out = append(out, token{kind: tComma, text: ",", pos: i})
			i++
		case c >= '0' && c <= '9':
			start := i
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i-start > 6 {
				return nil, fmt.Errorf("number %q too long", s[start:i])
			}
			n, _ := strconv.Atoi(s[start:i])
			if i < len(s) && s[i] == ':' {
				// time H:MM[:SS]
				parts := []int{n}
				for len(parts) < 3 && i < len(s) && s[i] == ':' {
					j := i + 1
					k := j
					for k < len(s) && s[k] >= '0' && s[k] <= '9' {
						k++
					}
					if k-j != 2 {
						return nil, fmt.Errorf("bad time %q: minutes and seconds take two digits", s[start:k])
					}
					v, _ := strconv.Atoi(s[j:k])
					parts = append(parts, v)
					i = k
				}
				if i-start > 2+3+3 || parts[0] > 23 || parts[1] > 59 || (len(parts) == 3 && parts[2] > 59) {
					return nil, fmt.Errorf("bad time %q", s[start:i])
				}
				tk := token{kind: tTime, text: s[start:i], pos: start, n: parts[0]*3600 + parts[1]*60}
				if len(parts) == 3 {
					tk.n += parts[2]
					tk.hasSec = true
				}
				out = append(out, tk)
				continue
			}
			tk := token{kind: tNum, text: s[start:i], n: n, pos: start}
			j := i
			for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
				j++
			}
			switch suf := s[i:j]; suf {
			case "st", "nd", "rd", "th":
				tk.ordinal = true
				tk.text = s[start:j]
				i = j
			}
			out = append(out, tk)
		case c >= 'a' && c <= 'z':
			start := i
			for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
				i++
			}
			out = append(out, token{kind: tWord, text: s[start:i], pos: start})
		default:
			return nil, fmt.Errorf("unexpected character %q at position %d", c, i)
		}
	}
	return out, nil
}

type parser struct {
	src  string
	toks []token
	pos  int
}

func (p *parser) peek(k int) *token {
	if i := p.pos + k; i >= 0 && i < len(p.toks) {
		return &p.toks[i]
	}
	return nil
}

func (p *parser) errAt(tk *token, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if tk == nil {
		return fmt.Errorf("%s at the end", msg)
	}
	return fmt.Errorf("%s at %q (position %d)", msg, tk.text, tk.pos)
}

func isWord(tk *token, words ...string) bool {
	if tk == nil || tk.kind != tWord {
		return false
	}
	for _, w := range words {
		if tk.text == w {
			return true
		}
	}
	return false
}

func isSep(tk *token) bool { return tk != nil && (tk.kind == tComma || isWord(tk, "and")) }

// unsupported later.js words, named in errors.
var unsupported = map[string]bool{"except": true, "before": true, "after": true, "between": true,
	"starting": true, "in": true, "from": true, "until": true}

// ParseText parses a later.js text expression (the subset in the package
// documentation).
func ParseText(expr string) (Schedule, error) {
	src := strings.TrimSpace(expr)
	toks, err := tokenize(strings.ToLower(src))
	if err != nil {
		return Schedule{}, fmt.Errorf("text_expression %q: %w", src, err)
	}
	p := &parser{src: src, toks: toks}
	var alts []*textSched
	for {
		t, err := p.schedule()
		if err != nil {
			return Schedule{}, fmt.Errorf("text_expression %q: %w", src, err)
		}
		alts = append(alts, t)
		if tk := p.peek(0); isWord(tk, "also") {
			p.pos++
			continue
		}
		break
	}
	return Schedule{src: src, alts: alts}, nil
}

func (p *parser) schedule() (*textSched, error) {
	t := &textSched{}
	for {
		tk := p.peek(0)
		switch {
		case tk == nil:
			return nil, p.errAt(nil, "expected at, on or every")
		case isWord(tk, "at"):
			p.pos++
			if err := p.at(t); err != nil {
				return nil, err
			}
		case isWord(tk, "on"):
			p.pos++
			if err := p.on(t); err != nil {
				return nil, err
			}
		case isWord(tk, "every"):
			p.pos++
			if err := p.every(t); err != nil {
				return nil, err
			}
		case tk.kind == tWord && unsupported[tk.text]:
			return nil, p.errAt(tk, "%q is not supported", tk.text)
		default:
			return nil, p.errAt(tk, "expected at, on or every")
		}
		next := p.peek(0)
		if next == nil || isWord(next, "also") {
			if err := t.finish(); err != nil {
				return nil, err
			}
			return t, nil
		}
		if isSep(next) {
			if after := p.peek(1); isWord(after, "at", "on", "every") {
				p.pos++
				continue
			}
			return nil, p.errAt(p.peek(1), "expected at, on or every after %q", next.text)
		}
	}
}

// set stores a restriction, refusing a period restricted twice.
func set(dst *uint64, v uint64, what string, tk *token, p *parser) error {
	if *dst != 0 {
		return p.errAt(tk, "%s given twice (list the values in one clause, e.g. \"on mon,wed\")", what)
	}
	*dst = v
	return nil
}

func (p *parser) at(t *textSched) error {
	if t.tod != nil {
		return p.errAt(p.peek(-1), "time of day given twice (list the times in one clause, e.g. \"at 9:00 and 17:00\")")
	}
	seen := map[int]bool{}
	for {
		v, err := p.time()
		if err != nil {
			return err
		}
		if !seen[v] {
			seen[v] = true
			t.tod = append(t.tod, v)
		}
		if isSep(p.peek(0)) && p.isTimeAt(1) {
			p.pos++
			continue
		}
		break
	}
	sort.Ints(t.tod)
	return nil
}

func (p *parser) isTimeAt(k int) bool {
	tk := p.peek(k)
	if tk == nil {
		return false
	}
	if tk.kind == tTime {
		return true
	}
	return tk.kind == tNum && !tk.ordinal && isWord(p.peek(k+1), "am", "pm")
}

// time reads H:MM[:SS] [am|pm] or H am|pm as seconds of the day.
func (p *parser) time() (int, error) {
	tk := p.peek(0)
	if tk == nil || (tk.kind != tTime && tk.kind != tNum) || tk.ordinal {
		return 0, p.errAt(tk, "expected a time such as 9:00, 9:00 am or 17:30")
	}
	p.pos++
	v := tk.n
	if tk.kind == tNum {
		if tk.n > 23 {
			return 0, p.errAt(tk, "bad hour")
		}
		v = tk.n * 3600
	}
	mer := p.peek(0)
	if isWord(mer, "am", "pm") {
		p.pos++
		h := v / 3600
		if h < 1 || h > 12 {
			return 0, p.errAt(tk, "hour %d with %s", h, mer.text)
		}
		h %= 12
		if mer.text == "pm" {
			h += 12
		}
		v = h*3600 + v%3600
	} else if tk.kind == tNum {
		return 0, p.errAt(tk, "a bare hour needs am or pm (or write %d:00)", tk.n)
	}
	return v, nil
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tues": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

var (
	weekdays = allBits(1, 5)
	weekends = uint64(1<<time.Sunday | 1<<time.Saturday)
)

func weekPart(tk *token) (uint64, bool) {
	switch {
	case isWord(tk, "weekday", "weekdays"):
		return weekdays, true
	case isWord(tk, "weekend", "weekends"):
		return weekends, true
	}
	return 0, false
}

func (p *parser) on(t *textSched) error {
	tk := p.peek(0)
	if m, ok := weekPart(tk); ok {
		p.pos++
		return set(&t.dow, m, "day of the week", tk, p)
	}
	if tk != nil && tk.kind == tWord {
		if _, ok := dayNames[tk.text]; ok {
			var m uint64
			for {
				d := p.peek(0)
				wd, ok := dayNames[wordOf(d)]
				if !ok {
					return p.errAt(d, "expected a day name")
				}
				p.pos++
				m |= 1 << uint(wd)
				if isSep(p.peek(0)) {
					if _, ok := dayNames[wordOf(p.peek(1))]; ok {
						p.pos++
						continue
					}
				}
				break
			}
			return set(&t.dow, m, "day of the week", tk, p)
		}
	}
	if isWord(tk, "the") {
		p.pos++
	}
	type ord struct {
		n    int // 0: last
		tok  *token
		last bool
	}
	var ords []ord
	for {
		o := p.peek(0)
		switch {
		case isWord(o, "first"):
			ords = append(ords, ord{n: 1, tok: o})
		case isWord(o, "last"):
			ords = append(ords, ord{last: true, tok: o})
		case o != nil && o.kind == tNum:
			if o.n < 1 {
				return p.errAt(o, "ordinals start at 1")
			}
			ords = append(ords, ord{n: o.n, tok: o})
		default:
			return p.errAt(o, "expected a day name, weekday, weekend or \"the <first|last|Nth> day\"")
		}
		p.pos++
		if isSep(p.peek(0)) {
			nx := p.peek(1)
			if isWord(nx, "first", "last") || (nx != nil && nx.kind == tNum) {
				p.pos++
				continue
			}
		}
		break
	}
	if u := p.peek(0); !isWord(u, "day") {
		return p.errAt(u, "only \"day\" ordinals are supported (\"on the first day of the month\")")
	}
	p.pos++
	ofWeek := false
	if isWord(p.peek(0), "of") {
		p.pos++
		if isWord(p.peek(0), "the") {
			p.pos++
		}
		switch u := p.peek(0); {
		case isWord(u, "month"):
		case isWord(u, "week"):
			ofWeek = true
		default:
			return p.errAt(u, "expected month or week")
		}
		p.pos++
	}
	var m uint64
	for _, o := range ords {
		switch {
		case ofWeek && o.last:
			m |= 1 << uint(time.Saturday)
		case ofWeek:
			if o.n > 7 {
				return p.errAt(o.tok, "a week has 7 days")
			}
			m |= 1 << uint(o.n-1) // first day of the week = Sunday
		case o.last:
			m |= 1 << domLast
		default:
			if o.n > 31 {
				return p.errAt(o.tok, "a month has at most 31 days")
			}
			m |= 1 << uint(o.n)
		}
	}
	if ofWeek {
		return set(&t.dow, m, "day of the week", tk, p)
	}
	return set(&t.dom, m, "day of the month", tk, p)
}

func wordOf(tk *token) string {
	if tk == nil || tk.kind != tWord {
		return ""
	}
	return tk.text
}

func (p *parser) every(t *textSched) error {
	tk := p.peek(0)
	if m, ok := weekPart(tk); ok {
		p.pos++
		return set(&t.dow, m, "day of the week", tk, p)
	}
	n := 1
	if tk != nil && tk.kind == tNum && !tk.ordinal {
		if tk.n < 1 {
			return p.errAt(tk, "every needs a positive number")
		}
		n = tk.n
		p.pos++
	}
	u := p.peek(0)
	var (
		dst    *uint64
		lo, hi int
		what   string
	)
	switch wordOf(u) {
	case "second", "seconds", "sec", "secs":
		dst, lo, hi, what = &t.sec, 0, 59, "second"
	case "minute", "minutes", "min", "mins":
		dst, lo, hi, what = &t.min, 0, 59, "minute"
	case "hour", "hours", "hr", "hrs":
		dst, lo, hi, what = &t.hour, 0, 23, "hour"
	case "day", "days":
		dst, lo, hi, what = &t.dom, 1, 31, "day of the month"
	case "month", "months":
		dst, lo, hi, what = &t.month, 1, 12, "month"
	case "week", "weeks", "year", "years":
		return p.errAt(u, "every %s is not supported (use \"on mon\" or a cron expression)", u.text)
	default:
		return p.errAt(u, "expected a unit (seconds, minutes, hours, days, months), weekday or weekend")
	}
	p.pos++
	var m uint64
	for v := lo; v <= hi; v += n {
		m |= 1 << uint(v)
	}
	return set(dst, m, what, u, p)
}
