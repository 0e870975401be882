package templates

import (
	"math"
	"time"
)

// parseJSDate is `new Date(string)` as V8 (Node) implements it: moment falls
// back to it for strings that are neither ISO-8601 nor RFC 2822, and config
// authors relied on it for inputs like "May 1, 2024" or "2024/05/01 10:00".
// It is a port of V8's DateParser (src/date/dateparser*.{h,cc}): the ES5
// ISO prefix first, then the legacy rules.
func parseJSDate(s string, loc *time.Location) (time.Time, bool) {
	p := jsDateParser{toks: scanDateTokens(s)}
	p.tz.sign, p.tz.hour, p.tz.minute = kNone, kNone, kNone
	p.time.hourOffset = kNone
	p.day.namedMonth = kNone
	if !p.parse() {
		return time.Time{}, false
	}
	y, mon, d, ok := p.day.write()
	if !ok {
		return time.Time{}, false
	}
	h, mi, sec, ms, ok := p.time.write()
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	if p.tz.sign == kNone {
		t = jsLocalDate(y, time.Month(mon), d, h, mi, sec, ms, loc)
	} else {
		hour, minute := p.tz.hour, p.tz.minute
		if hour == kNone {
			hour = 0
		}
		if minute == kNone {
			minute = 0
		}
		if hour*3600+minute*60 > 1<<30-1 { // V8: the offset must be a Smi
			return time.Time{}, false
		}
		offset := p.tz.sign * (hour*3600 + minute*60)
		t = time.Date(y, time.Month(mon), d, h, mi, sec, ms*1e6, time.UTC).Add(-time.Duration(offset) * time.Second).In(loc)
	}
	if math.Abs(float64(t.UnixMilli())) > maxTimeMs || t.Year() > 300000 || t.Year() < -300000 {
		return time.Time{}, false
	}
	return t, true
}

const kNone = math.MinInt32

type dtKind uint8

const (
	dtEnd dtKind = iota
	dtInvalid
	dtNumber
	dtSymbol
	dtKeyword
	dtSpace
	dtUnknown
)

type kwType uint8

const (
	kwInvalid kwType = iota
	kwMonth
	kwAMPM
	kwZone
	kwTimeSep
)

type dtToken struct {
	kind    dtKind
	num     int // number value (first 9 digits) or keyword value
	length  int // digits of a number, characters of a word
	sym     byte
	kw      kwType
	isWordZ bool
}

func (t dtToken) isNumber() bool           { return t.kind == dtNumber }
func (t dtToken) isFixedNumber(n int) bool { return t.kind == dtNumber && t.length == n }
func (t dtToken) isSymbol(c byte) bool     { return t.kind == dtSymbol && t.sym == c }
func (t dtToken) isSign() bool             { return t.kind == dtSymbol && (t.sym == '+' || t.sym == '-') }
func (t dtToken) sign() int {
	if t.sym == '-' {
		return -1
	}
	return 1
}

// dateKeywords is V8's KeywordTable: words are matched on their first three
// letters, lowercased; only month names may be longer than their entry.
var dateKeywords = []struct {
	prefix string
	kw     kwType
	value  int
}{
	{"jan", kwMonth, 1}, {"feb", kwMonth, 2}, {"mar", kwMonth, 3}, {"apr", kwMonth, 4},
	{"may", kwMonth, 5}, {"jun", kwMonth, 6}, {"jul", kwMonth, 7}, {"aug", kwMonth, 8},
	{"sep", kwMonth, 9}, {"oct", kwMonth, 10}, {"nov", kwMonth, 11}, {"dec", kwMonth, 12},
	{"am", kwAMPM, 0}, {"pm", kwAMPM, 12},
	{"ut", kwZone, 0}, {"utc", kwZone, 0}, {"z", kwZone, 0}, {"gmt", kwZone, 0},
	{"cdt", kwZone, -5}, {"cst", kwZone, -6}, {"edt", kwZone, -4}, {"est", kwZone, -5},
	{"mdt", kwZone, -6}, {"mst", kwZone, -7}, {"pdt", kwZone, -7}, {"pst", kwZone, -8},
	{"t", kwTimeSep, 0},
}

func scanDateTokens(s string) []dtToken {
	var toks []dtToken
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			// ReadUnsignedNumeral: leading zeros are skipped, then at most 9
			// significant digits count; length includes the zeros.
			start, n, sig := i, 0, 0
			for i < len(s) && s[i] == '0' {
				i++
			}
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				if sig < 9 {
					n = n*10 + int(s[i]-'0')
				}
				sig++
				i++
			}
			toks = append(toks, dtToken{kind: dtNumber, num: n, length: i - start})
			continue
		case c == ':' || c == '-' || c == '+' || c == '.' || c == ')':
			toks = append(toks, dtToken{kind: dtSymbol, sym: c})
			i++
			continue
		}
		r, w := decodeRune(s[i:])
		switch {
		case r >= 'A' && !isJSSpace(r):
			var prefix []rune
			length := 0
			for i < len(s) {
				r, w := decodeRune(s[i:])
				if r < 'A' || isJSSpace(r) {
					break
				}
				if length < 3 {
					prefix = append(prefix, r|0x20)
				}
				length++
				i += w
			}
			tok := dtToken{kind: dtKeyword, length: length}
			p := string(prefix)
			for _, k := range dateKeywords {
				if k.prefix == p && (length <= 3 || k.kw == kwMonth) {
					tok.kw, tok.num = k.kw, k.value
					break
				}
			}
			tok.isWordZ = tok.kw == kwZone && length == 1 && p == "z"
			toks = append(toks, tok)
		case isJSSpace(r):
			for i < len(s) {
				r, w := decodeRune(s[i:])
				if !isJSSpace(r) {
					break
				}
				i += w
			}
			toks = append(toks, dtToken{kind: dtSpace})
		case r == '(':
			balance := 0
			for {
				switch s[i] {
				case ')':
					balance--
				case '(':
					balance++
				}
				i++
				if balance <= 0 || i >= len(s) {
					break
				}
			}
			toks = append(toks, dtToken{kind: dtUnknown})
		default:
			i += w
			toks = append(toks, dtToken{kind: dtUnknown})
		}
	}
	return toks
}

type dayComposer struct {
	comp       [3]int
	n          int
	namedMonth int
	isISO      bool
}

func (d *dayComposer) add(v int) bool {
	if d.n >= 3 {
		return false
	}
	d.comp[d.n] = v
	d.n++
	return true
}

func between(x, lo, hi int) bool { return x >= lo && x <= hi }
func isDay(x int) bool           { return between(x, 1, 31) }

// write is DayComposer::Write, including its quirk of filling missing
// components with 1 before choosing the order ("May 1" is year 2001).
func (d *dayComposer) write() (year, month, day int, ok bool) {
	if d.n < 1 {
		return 0, 0, 0, false
	}
	for d.n < 3 {
		d.comp[d.n] = 1
		d.n++
	}
	month, day = kNone, kNone
	if d.namedMonth == kNone {
		if d.isISO || !isDay(d.comp[0]) {
			year, month, day = d.comp[0], d.comp[1], d.comp[2]
		} else {
			month, day, year = d.comp[0], d.comp[1], d.comp[2]
		}
	} else {
		month = d.namedMonth
		if !isDay(d.comp[0]) {
			year, day = d.comp[0], d.comp[1]
		} else {
			day, year = d.comp[0], d.comp[1]
		}
	}
	if !d.isISO {
		if between(year, 0, 49) {
			year += 2000
		} else if between(year, 50, 99) {
			year += 1900
		}
	}
	if !between(month, 1, 12) || !isDay(day) {
		return 0, 0, 0, false
	}
	return year, month, day, true
}

type timeComposer struct {
	comp       [4]int
	n          int
	hourOffset int
}

func (t *timeComposer) isEmpty() bool { return t.n == 0 }
func (t *timeComposer) add(v int) bool {
	if t.n >= 4 {
		return false
	}
	t.comp[t.n] = v
	t.n++
	return true
}
func (t *timeComposer) addFinal(v int) bool {
	if !t.add(v) {
		return false
	}
	for t.n < 4 {
		t.comp[t.n] = 0
		t.n++
	}
	return true
}
func (t *timeComposer) isExpecting(v int) bool {
	return (t.n == 1 && between(v, 0, 59)) || (t.n == 2 && between(v, 0, 59)) || (t.n == 3 && between(v, 0, 999))
}

func (t *timeComposer) write() (h, m, s, ms int, ok bool) {
	for t.n < 4 {
		t.comp[t.n] = 0
		t.n++
	}
	h, m, s, ms = t.comp[0], t.comp[1], t.comp[2], t.comp[3]
	if t.hourOffset != kNone {
		if !between(h, 0, 12) {
			return 0, 0, 0, 0, false
		}
		h = h%12 + t.hourOffset
	}
	if !between(h, 0, 23) || !between(m, 0, 59) || !between(s, 0, 59) || !between(ms, 0, 999) {
		if h != 24 || m != 0 || s != 0 || ms != 0 {
			return 0, 0, 0, 0, false
		}
	}
	return h, m, s, ms, true
}

type tzComposer struct{ sign, hour, minute int }

func (z *tzComposer) set(hours int) {
	z.sign = 1
	if hours < 0 {
		z.sign = -1
		hours = -hours
	}
	z.hour, z.minute = hours, 0
}
func (z *tzComposer) isExpecting(v int) bool {
	return z.hour != kNone && z.minute == kNone && between(v, 0, 59)
}
func (z *tzComposer) isUTC() bool { return z.hour == 0 && z.minute == 0 }

type jsDateParser struct {
	toks []dtToken
	pos  int
	day  dayComposer
	time timeComposer
	tz   tzComposer
}

func (p *jsDateParser) peek() dtToken {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return dtToken{kind: dtEnd}
}

func (p *jsDateParser) next() dtToken {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *jsDateParser) skipSymbol(c byte) bool {
	if p.peek().isSymbol(c) {
		p.pos++
		return true
	}
	return false
}

// readMilliseconds keeps the three most significant digits of a fraction.
func readMilliseconds(t dtToken) int {
	n, length := t.num, t.length
	switch {
	case length == 1:
		n *= 100
	case length == 2:
		n *= 10
	case length > 3:
		if length > 9 {
			length = 9
		}
		for ; length > 3; length-- {
			n /= 10
		}
	}
	return n
}

// parseES5 is ParseES5DateTime: it returns the first token it did not
// handle (dtEnd when the whole string was an ES5 date, dtInvalid when a time
// part was malformed).
func (p *jsDateParser) parseES5() dtToken {
	if p.peek().isSign() {
		signTok := p.next()
		if !p.peek().isFixedNumber(6) {
			return signTok
		}
		year := p.next().num
		if signTok.sign() < 0 && year == 0 {
			return signTok
		}
		p.day.add(signTok.sign() * year)
	} else if p.peek().isFixedNumber(4) {
		p.day.add(p.next().num)
	} else {
		return p.next()
	}
	if p.skipSymbol('-') {
		if !p.peek().isFixedNumber(2) || !between(p.peek().num, 1, 12) {
			return p.next()
		}
		p.day.add(p.next().num)
		if p.skipSymbol('-') {
			if !p.peek().isFixedNumber(2) || !isDay(p.peek().num) {
				return p.next()
			}
			p.day.add(p.next().num)
		}
	}
	if pk := p.peek(); !(pk.kind == dtKeyword && pk.kw == kwTimeSep) {
		if pk.kind != dtEnd {
			return p.next()
		}
	} else {
		p.next()
		invalid := dtToken{kind: dtInvalid}
		if !p.peek().isFixedNumber(2) || !between(p.peek().num, 0, 24) {
			return invalid
		}
		hourIs24 := p.peek().num == 24
		p.time.add(p.next().num)
		if !p.skipSymbol(':') {
			return invalid
		}
		if !p.peek().isFixedNumber(2) || !between(p.peek().num, 0, 59) || (hourIs24 && p.peek().num > 0) {
			return invalid
		}
		p.time.add(p.next().num)
		if p.skipSymbol(':') {
			if !p.peek().isFixedNumber(2) || !between(p.peek().num, 0, 59) || (hourIs24 && p.peek().num > 0) {
				return invalid
			}
			p.time.add(p.next().num)
			if p.skipSymbol('.') {
				if !p.peek().isNumber() || (hourIs24 && p.peek().num > 0) {
					return invalid
				}
				p.time.add(readMilliseconds(p.next()))
			}
		}
		if p.peek().isWordZ {
			p.next()
			p.tz.set(0)
		} else if p.peek().isSign() {
			p.tz.sign = p.next().sign()
			if p.peek().isFixedNumber(4) {
				hm := p.next().num
				if !between(hm/100, 0, 23) || !between(hm%100, 0, 59) {
					return invalid
				}
				p.tz.hour, p.tz.minute = hm/100, hm%100
			} else {
				if !p.peek().isFixedNumber(2) || !between(p.peek().num, 0, 23) {
					return invalid
				}
				p.tz.hour = p.next().num
				if !p.skipSymbol(':') {
					return invalid
				}
				if !p.peek().isFixedNumber(2) || !between(p.peek().num, 0, 59) {
					return invalid
				}
				p.tz.minute = p.next().num
			}
		}
		if p.peek().kind != dtEnd {
			return invalid
		}
	}
	// ES5: date-only forms are UTC, date-time forms without offset local.
	if p.tz.hour == kNone && p.time.isEmpty() {
		p.tz.set(0)
	}
	p.day.isISO = true
	return dtToken{kind: dtEnd}
}

// parse is DateParser::Parse after the ES5 prefix: the legacy rules.
func (p *jsDateParser) parse() bool {
	tok := p.parseES5()
	if tok.kind == dtInvalid {
		return false
	}
	hasReadNumber := p.day.n > 0
	for ; tok.kind != dtEnd; tok = p.next() {
		switch {
		case tok.isNumber():
			hasReadNumber = true
			n := tok.num
			if p.skipSymbol(':') {
				if p.skipSymbol(':') {
					if !p.time.isEmpty() {
						return false
					}
					p.time.add(n)
					p.time.add(0)
				} else {
					if !p.time.add(n) {
						return false
					}
					if p.peek().isSymbol('.') {
						p.next()
					}
				}
			} else if p.skipSymbol('.') && p.time.isExpecting(n) {
				p.time.add(n)
				if !p.peek().isNumber() {
					return false
				}
				p.time.addFinal(readMilliseconds(p.next()))
			} else if p.tz.isExpecting(n) {
				p.tz.minute = n
			} else if p.time.isExpecting(n) {
				p.time.addFinal(n)
				pk := p.peek()
				if pk.kind != dtEnd && pk.kind != dtSpace && !pk.isWordZ && !pk.isSign() {
					return false
				}
			} else {
				if !p.day.add(n) {
					return false
				}
				p.skipSymbol('-')
			}
		case tok.kind == dtKeyword:
			switch {
			case tok.kw == kwAMPM && !p.time.isEmpty():
				p.time.hourOffset = tok.num
			case tok.kw == kwMonth:
				p.day.namedMonth = tok.num
				p.skipSymbol('-')
			case tok.kw == kwZone && hasReadNumber:
				p.tz.set(tok.num)
			default:
				// Words are ignored before the first number only, and must be
				// separated from it.
				if hasReadNumber || p.peek().isNumber() {
					return false
				}
			}
		case tok.isSign() && (p.tz.isUTC() || !p.time.isEmpty()):
			p.tz.sign = tok.sign()
			n, length := 0, 0
			if p.peek().isNumber() {
				t := p.next()
				n, length = t.num, t.length
			}
			hasReadNumber = true
			switch {
			case p.peek().isSymbol(':'):
				p.tz.hour, p.tz.minute = n, kNone
			case length == 1 || length == 2:
				p.tz.hour, p.tz.minute = n, 0
			case length == 3 || length == 4:
				p.tz.hour, p.tz.minute = n/100, n%100
			default:
				return false
			}
		case (tok.isSign() || tok.isSymbol(')')) && hasReadNumber:
			return false
		}
	}
	return true
}
