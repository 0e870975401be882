package validation

import (
	"math"
	"strconv"
	"strings"
	"time"

	"sentinel-go/jsv"
)

// duration is "<n> <unit>" as used by uniqueWithin, isAfter and isBefore.
type duration struct {
	n    float64
	unit string // second, minute, hour, day, week, month, year
}

// maxDurationAmount bounds n so that date arithmetic cannot overflow.
const maxDurationAmount = 1e6

// parseDuration reads "<n> <unit>": n a number (negative and fractional
// allowed), unit second(s), minute(s), hour(s), day(s), week(s), month(s) or
// year(s), case-insensitive, separated by white space.
func parseDuration(v any) (duration, bool) {
	s, ok := v.(string)
	if !ok {
		return duration{}, false
	}
	parts := strings.Fields(s)
	if len(parts) != 2 {
		return duration{}, false
	}
	if numberPrefix(parts[0]) != len(parts[0]) {
		return duration{}, false
	}
	n, err := strconv.ParseFloat(parts[0], 64)
	if err != nil || math.Abs(n) > maxDurationAmount {
		return duration{}, false
	}
	unit := strings.TrimSuffix(strings.ToLower(parts[1]), "s")
	switch unit {
	case "second", "minute", "hour", "day", "week", "month", "year":
	default:
		return duration{}, false
	}
	return duration{n: n, unit: unit}, true
}

// jsRound is JavaScript's Math.round (halves round up).
func jsRound(f float64) float64 { return math.Floor(f + 0.5) }

// addTo returns t + sign*d the way Moment.js add/subtract do (Moment docs):
// seconds, minutes and hours are exact amounts of time; days and weeks move
// the wall-clock date (weeks as 7 days), months and years move the month
// (years as 12 months) and clamp to the month's last day; fractional days
// and months are rounded to the nearest integer.
func (d duration) addTo(t time.Time, sign float64) time.Time {
	n := d.n * sign
	switch d.unit {
	case "second":
		return t.Add(time.Duration(jsRound(n*1000)) * time.Millisecond)
	case "minute":
		return t.Add(time.Duration(jsRound(n*60000)) * time.Millisecond)
	case "hour":
		return t.Add(time.Duration(jsRound(n*3600000)) * time.Millisecond)
	case "day":
		return t.AddDate(0, 0, int(jsRound(n)))
	case "week":
		return t.AddDate(0, 0, int(jsRound(n*7)))
	case "month":
		return addMonths(t, int(jsRound(n)))
	default: // year
		return addMonths(t, int(jsRound(n*12)))
	}
}

// addMonths moves t by months, keeping the day of month unless the target
// month is shorter (31 January + 1 month = 28/29 February), as Moment does.
func addMonths(t time.Time, months int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(months), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// Date layouts accepted for isAfter/isBefore values, ISO 8601 as Moment
// parses them; without an offset the time is local (loc).
var dateLayouts = []string{
	"2006-01-02",
	"2006-01",
	"2006-01-02T15:04",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04:05.999999999",
}

var zoneSuffixes = []string{"", "Z07:00", "Z0700", "Z07"}

// parseDate reads the value of isAfter/isBefore: a number is epoch
// milliseconds (SMS date fields), a string an ISO 8601 date or date-time
// (app forms). Anything else is invalid.
func parseDate(v any, loc *time.Location) (time.Time, bool) {
	if isNumber(v) {
		f := jsv.Number(v)
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 8.64e15 {
			return time.Time{}, false
		}
		return time.UnixMilli(int64(f)), true
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	s = strings.TrimSpace(s)
	if len(s) < 7 || s[4] != '-' {
		return time.Time{}, false
	}
	for _, layout := range dateLayouts {
		for _, zone := range zoneSuffixes {
			if zone != "" && !strings.Contains(layout, "15") {
				continue
			}
			if t, err := time.ParseInLocation(layout+zone, s, loc); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}
