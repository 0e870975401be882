package recur

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed recurrence. The zero Schedule never fires.
type Schedule struct {
	src  string
	cron cron.Schedule // set for cron expressions
	alts []*textSched  // set for text expressions: union of alternatives
}

// ErrEmpty is returned by Parse when neither expression is given.
var ErrEmpty = errors.New("no cron or text_expression")

// maxRange bounds how far back Latest looks: a wider window is cut to its
// newest maxRange.
const maxRange = 10 * 366 * 24 * time.Hour

// Parse builds a Schedule from a 5-field cron expression or a later.js text
// expression; the text expression wins when both are set (blank counts as
// unset).
func Parse(cronExpr, textExpr string) (Schedule, error) {
	if strings.TrimSpace(textExpr) != "" {
		return ParseText(textExpr)
	}
	if strings.TrimSpace(cronExpr) != "" {
		return ParseCron(cronExpr)
	}
	return Schedule{}, ErrEmpty
}

// cronParser is robfig/cron's standard parser (5 fields, descriptors).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a standard 5-field cron expression.
func ParseCron(expr string) (Schedule, error) {
	src := strings.TrimSpace(expr)
	if strings.HasPrefix(src, "@every") {
		return Schedule{}, fmt.Errorf("cron %q: @every has no fixed times; use a 5-field expression", src)
	}
	s, err := parseCronSafe(normalizeDow(src))
	if err != nil {
		return Schedule{}, fmt.Errorf("cron %q: %w", src, err)
	}
	if _, ok := s.(*cron.SpecSchedule); !ok {
		return Schedule{}, fmt.Errorf("cron %q: not a fixed-time schedule", src)
	}
	return Schedule{src: src, cron: s}, nil
}

func parseCronSafe(expr string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid expression")
		}
	}()
	return cronParser.Parse(expr)
}

// normalizeDow rewrites day-of-week 7 (Sunday, accepted by crontab and
// later.js) as 0, which robfig/cron rejects: "7" → "0", "a-7" → "a-6,0".
func normalizeDow(expr string) string {
	f := strings.Fields(expr)
	start := 0
	if len(f) > 0 && (strings.HasPrefix(f[0], "CRON_TZ=") || strings.HasPrefix(f[0], "TZ=")) {
		start = 1
	}
	if len(f)-start != 5 {
		return expr
	}
	i := len(f) - 1
	parts := strings.Split(f[i], ",")
	changed := false
	for j, p := range parts {
		switch {
		case p == "7":
			parts[j], changed = "0", true
		case strings.HasSuffix(p, "-7") && !strings.Contains(p, "/"):
			lo := strings.TrimSuffix(p, "-7")
			if lo == "7" || lo == "0" {
				parts[j] = "0"
			} else {
				parts[j] = lo + "-6,0"
			}
			changed = true
		}
	}
	if !changed {
		return expr
	}
	f[i] = strings.Join(parts, ",")
	return strings.Join(f, " ")
}

// String is the expression the schedule was parsed from.
func (s Schedule) String() string { return s.src }

// IsZero reports whether s is the zero Schedule.
func (s Schedule) IsZero() bool { return s.cron == nil && len(s.alts) == 0 }

// Latest returns the latest scheduled time S with after < S ≤ notAfter,
// reading the schedule in local time loc (nil: UTC); false when there is
// none. A window longer than ten years is cut to its newest ten years.
func (s Schedule) Latest(after, notAfter time.Time, loc *time.Location) (time.Time, bool) {
	if loc == nil {
		loc = time.UTC
	}
	a, n := after.In(loc), notAfter.In(loc)
	if !a.Before(n) {
		return time.Time{}, false
	}
	if n.Sub(a) > maxRange {
		a = n.Add(-maxRange)
	}
	if s.cron != nil {
		return cronLatest(s.cron, a, n)
	}
	var best time.Time
	found := false
	for _, alt := range s.alts {
		if t, ok := alt.latest(a, n); ok && (!found || t.After(best)) {
			best, found = t, true
		}
	}
	return best, found
}

// cronLatest finds the latest activation in (a, n] with only Next: probe
// backwards from n with doubling steps until one activation lands in the
// window, then walk forwards to the last one not after n. The forward walk
// only covers the probe's half-window, which held the first activation.
func cronLatest(s cron.Schedule, a, n time.Time) (time.Time, bool) {
	step := time.Minute
	var found time.Time
	for {
		from := n.Add(-step)
		if !from.After(a) {
			from = a
		}
		t := s.Next(from)
		if !t.IsZero() && !t.After(n) {
			found = t
			break
		}
		if from.Equal(a) {
			return time.Time{}, false
		}
		step *= 2
	}
	for {
		t := s.Next(found)
		if t.IsZero() || t.After(n) || !t.After(found) {
			return found, true
		}
		found = t
	}
}

// nextHorizon bounds how far ahead Next looks.
const nextHorizon = 8 * 366 * 24 * time.Hour

// Next returns the first scheduled time at or after from, to the second
// (from's fraction of a second is dropped), reading the schedule in loc
// (nil: UTC); false when there is none within eight years. It is built on
// Latest: the window (from-1s, x] holds an occurrence for every x past the
// first one, so the first is found by widening, then halving, the window.
func (s Schedule) Next(from time.Time, loc *time.Location) (time.Time, bool) {
	if s.IsZero() {
		return time.Time{}, false
	}
	start := from.Truncate(time.Second)
	after := start.Add(-time.Second)
	hi := time.Second
	for {
		if _, ok := s.Latest(after, start.Add(hi-time.Second), loc); ok {
			break
		}
		if hi > nextHorizon {
			return time.Time{}, false
		}
		hi *= 2
	}
	// The first occurrence is in [start+lo, start+hi-1s], whole seconds.
	lo := time.Duration(0)
	if hi > time.Second {
		lo = hi / 2
	}
	for lo < hi-time.Second {
		mid := lo + (hi-lo)/2
		mid = mid.Truncate(time.Second)
		if _, ok := s.Latest(after, start.Add(mid-time.Second), loc); ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	return s.Latest(after, start.Add(hi-time.Second), loc)
}
