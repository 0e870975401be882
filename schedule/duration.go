// Package schedule turns schedule definitions into scheduled_tasks, clears
// and silences them, and holds the scheduled jobs (due tasks, reminders and
// the others) of schedules.md.
package schedule

import (
	"strconv"
	"strings"
	"time"
)

// Duration is "<integer> <unit>" with unit second(s) … year(s), as config
// authors write `offset`, `silence_for` or `mute_after_form_for`.
type Duration struct {
	N    int
	Unit string // second, minute, hour, day, week, month, year
}

// ParseDuration reads a duration; ok is false for anything else.
func ParseDuration(s string) (Duration, bool) {
	f := strings.Fields(strings.TrimSpace(s))
	if len(f) != 2 {
		return Duration{}, false
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return Duration{}, false
	}
	u := strings.TrimSuffix(strings.ToLower(f[1]), "s")
	switch u {
	case "second", "minute", "hour", "day", "week", "month", "year":
		return Duration{N: n, Unit: u}, true
	}
	return Duration{}, false
}

// AddTo adds the duration to t with local calendar arithmetic: days and
// weeks keep the wall-clock time, months and years clamp to the month end
// (Moment.js semantics).
func (d Duration) AddTo(t time.Time) time.Time { return d.add(t, d.N) }

// SubFrom subtracts the duration from t.
func (d Duration) SubFrom(t time.Time) time.Time { return d.add(t, -d.N) }

func (d Duration) add(t time.Time, n int) time.Time {
	switch d.Unit {
	case "second":
		return t.Add(time.Duration(n) * time.Second)
	case "minute":
		return t.Add(time.Duration(n) * time.Minute)
	case "hour":
		return t.Add(time.Duration(n) * time.Hour)
	case "day":
		return t.AddDate(0, 0, n)
	case "week":
		return t.AddDate(0, 0, 7*n)
	case "month":
		return addMonths(t, n)
	case "year":
		return addMonths(t, 12*n)
	}
	return t
}

func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// StartOfDay is local midnight of t.
func StartOfDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}
