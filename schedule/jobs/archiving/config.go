package archiving

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sentinel-go/config"
	"sentinel-go/schedule/recur"
)

// durationRE is moment.js's "<integer> <unit>" duration (jobs.md §0).
var durationRE = regexp.MustCompile(`^(\d+) +([A-Za-z]+)$`)

// Moment.js's fixed lengths of its duration units (a month is 30 days, a
// year 365).
var longUnits = map[string]time.Duration{
	"millisecond": time.Millisecond, "second": time.Second, "minute": time.Minute,
	"hour": time.Hour, "day": 24 * time.Hour, "week": 7 * 24 * time.Hour,
	"month": 30 * 24 * time.Hour, "year": 365 * 24 * time.Hour,
}

// shortUnits are spelled exactly: "m" is a minute, "M" a month.
var shortUnits = map[string]time.Duration{
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
	"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "M": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
}

// ParseDuration reads archive.duration; false (no bound) for anything else
// and for zero.
func ParseDuration(s string) (time.Duration, bool) {
	m := durationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n == 0 {
		return 0, false
	}
	unit, ok := shortUnits[m[2]]
	if !ok {
		unit, ok = longUnits[strings.TrimSuffix(strings.ToLower(m[2]), "s")]
	}
	if !ok || time.Duration(n) > (1<<62)/unit {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// humanize is a short English reading of d for the start log line.
func humanize(d time.Duration) string {
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"year", 365 * 24 * time.Hour}, {"month", 30 * 24 * time.Hour}, {"day", 24 * time.Hour},
		{"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second}} {
		if d >= u.d {
			n := int(d / u.d)
			if n == 1 {
				return "1 " + u.name
			}
			return fmt.Sprintf("%d %ss", n, u.name)
		}
	}
	return "a few seconds"
}

// Settings is the `archive` block.
type Settings struct {
	// Schedule is the configured schedule; zero when none (run every tick).
	Schedule recur.Schedule
	// ScheduleErr is set when a schedule is configured but unparsable.
	ScheduleErr error
	// Bound is the duration of a run; 0 means until the queue is drained.
	Bound time.Duration
}

// ReadSettings reads the `archive` block of the settings.
func ReadSettings(s *config.Settings) Settings {
	var out Settings
	if s == nil {
		return out
	}
	block, _ := s.Get("archive").(map[string]any)
	cronExpr, _ := block["cron"].(string)
	text, _ := block["text_expression"].(string)
	if sched, err := recur.Parse(cronExpr, text); err == nil {
		out.Schedule = sched
	} else if !errors.Is(err, recur.ErrEmpty) {
		out.ScheduleErr = err
	}
	if d, ok := block["duration"].(string); ok {
		out.Bound, _ = ParseDuration(d)
	}
	return out
}

// Check reports the problems of the `archive` block (check-config).
func Check(s *config.Settings) []config.Problem {
	block, ok := s.Get("archive").(map[string]any)
	if !ok {
		if s.Get("archive") != nil {
			return []config.Problem{config.Errorf("archive", "must be an object")}
		}
		return nil
	}
	var ps []config.Problem
	if err := ReadSettings(s).ScheduleErr; err != nil {
		ps = append(ps, config.Errorf("archive", "Archiving: malformed schedule configuration: %v (archiving runs at every job run instead)", err))
	}
	if d, has := block["duration"]; has {
		ds, _ := d.(string)
		if _, ok := ParseDuration(ds); !ok {
			ps = append(ps, config.Warnf("archive.duration", "%v is not a duration such as \"4 hours\": archiving runs until the queue is drained", d))
		}
	}
	return ps
}
