package outbound

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// CronWindow is how close to a fire time of `cron` a push must be to be sent.
const CronWindow = 5 * time.Minute

// cronParser reads the standard 5 fields (minute hour day-of-month month
// day-of-week) and the @yearly/@monthly/@weekly/@daily/@hourly descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a 5-field cron expression. Day of week 7 is read as
// Sunday, as crontab does. `@every` is rejected: it has no fixed times.
func ParseCron(expr string) (s cron.Schedule, err error) {
	src := strings.TrimSpace(expr)
	if strings.HasPrefix(src, "@every") {
		return nil, fmt.Errorf("cron %q: @every has no fixed times", src)
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cron %q: invalid expression", src)
		}
	}()
	s, err = cronParser.Parse(sundaySeven(src))
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", src, err)
	}
	return s, nil
}

// sundaySeven rewrites a day-of-week 7 (Sunday in crontab; robfig/cron
// rejects it) as 0: "7" → "0", "5-7" → "5-6,0".
func sundaySeven(expr string) string {
	f := strings.Fields(expr)
	if len(f) != 5 {
		return expr
	}
	parts := strings.Split(f[4], ",")
	changed := false
	for i, p := range parts {
		switch {
		case p == "7":
			parts[i], changed = "0", true
		case strings.HasSuffix(p, "-7") && !strings.Contains(p, "/"):
			lo := strings.TrimSuffix(p, "-7")
			if lo == "7" {
				parts[i] = "0"
			} else {
				parts[i] = lo + "-6,0"
			}
			changed = true
		}
	}
	if !changed {
		return expr
	}
	f[4] = strings.Join(parts, ",")
	return strings.Join(f, " ")
}

// CronDue reports whether a fire time of s lies within CronWindow of now
// (either side), in loc (the daemon's local time).
func CronDue(s cron.Schedule, now time.Time, loc *time.Location) bool {
	if s == nil {
		return false
	}
	if loc == nil {
		loc = time.Local
	}
	now = now.In(loc)
	lo, hi := now.Add(-CronWindow), now.Add(CronWindow)
	// Next returns the first fire time after its argument, at whole seconds.
	t := lo.Add(-time.Second)
	for i := 0; i < 3; i++ {
		n := s.Next(t)
		if n.IsZero() {
			return false
		}
		if n.Before(lo) {
			t = n
			continue
		}
		return !n.After(hi)
	}
	return false
}

// Due reports whether the push may be sent now: no cron, or a cron fire
// time within CronWindow. err is set (and due false) for an invalid cron.
func (p *Push) Due(now time.Time, loc *time.Location) (bool, error) {
	if p.Cron == "" {
		return true, nil
	}
	if p.cronSched == nil {
		if p.cronErr != nil {
			return false, p.cronErr
		}
		return false, fmt.Errorf("cron %q: invalid expression", p.Cron)
	}
	return CronDue(p.cronSched, now, loc), nil
}
