// Package config reads app_settings (the `settings` doc) and the `messages-*`
// translation docs into an immutable Config with the spec's defaults applied.
//
// A Config is built whole, validated, then swapped in by the daemon (build,
// validate, swap): workers read one *Config per change and never see a half
// loaded one. Problems carry a JSON path so that config authors find them.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"sentinel-go/jsv"
)

// Severity of a Problem.
type Severity string

// Problem severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Problem is one thing wrong with a config, with where it is.
type Problem struct {
	Path     string   `json:"path"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return fmt.Sprintf("%s: %s", p.Severity, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.Severity, p.Path, p.Message)
}

// Errorf makes an error Problem.
func Errorf(path, format string, args ...any) Problem {
	return Problem{Path: path, Severity: Error, Message: fmt.Sprintf(format, args...)}
}

// Warnf makes a warning Problem.
func Warnf(path, format string, args ...any) Problem {
	return Problem{Path: path, Severity: Warning, Message: fmt.Sprintf(format, args...)}
}

// HasErrors reports whether any problem is an error.
func HasErrors(ps []Problem) bool {
	for _, p := range ps {
		if p.Severity == Error {
			return true
		}
	}
	return false
}

// Settings is app_settings with typed accessors and the spec's defaults.
type Settings struct {
	// Raw is the settings object as stored; transitions read their own keys.
	Raw          map[string]any
	ContactTypes ContactTypes
	// OutboundOrder is the key order of settings.outbound as written (Go maps
	// lose it; pushes run in it). nil when unknown: names are then sorted.
	OutboundOrder []string
	// JSON is the settings object as stored, when read from the database
	// (SMS forms keep their fields in the order written); nil otherwise.
	JSON []byte
}

// NewSettings wraps a raw app_settings object.
func NewSettings(raw map[string]any) *Settings {
	if raw == nil {
		raw = map[string]any{}
	}
	return &Settings{Raw: raw, ContactTypes: parseContactTypes(raw["contact_types"])}
}

// Get returns the value at a dotted path of the settings.
func (s *Settings) Get(path string) any {
	v, _ := jsv.Get(s.Raw, path)
	return v
}

// String returns a string setting, or def when absent or not a string.
func (s *Settings) String(path, def string) string {
	if v, ok := s.Get(path).(string); ok && v != "" {
		return v
	}
	return def
}

// Int returns an integer setting (numbers or numeric strings), or def.
func (s *Settings) Int(path string, def int) int {
	switch v := s.Get(path).(type) {
	case float64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	return def
}

// Bool returns a boolean setting, or def when absent.
func (s *Settings) Bool(path string, def bool) bool {
	if v, ok := s.Get(path).(bool); ok {
		return v
	}
	return def
}

// Locale is the default locale (`locale`, else "en").
func (s *Settings) Locale() string { return s.String("locale", "en") }

// LocaleOutgoing is the locale of outgoing messages: `locale_outgoing`, else `locale`, else "en".
func (s *Settings) LocaleOutgoing() string {
	return s.String("locale_outgoing", s.Locale())
}

// DefaultDateFormat is used when date_format / reported_date_format are unset.
const DefaultDateFormat = "YYYY-MM-DDTHH:mm:ssZ"

// DateFormat is `date_format` (Moment.js tokens).
func (s *Settings) DateFormat() string { return s.String("date_format", DefaultDateFormat) }

// ReportedDateFormat is `reported_date_format` (Moment.js tokens).
func (s *Settings) ReportedDateFormat() string {
	return s.String("reported_date_format", DefaultDateFormat)
}

// DefaultCountryCode is `default_country_code` as a string of digits ("" when unset).
func (s *Settings) DefaultCountryCode() string {
	switch v := s.Get("default_country_code").(type) {
	case float64:
		return strconv.Itoa(int(v))
	case string:
		return strings.TrimPrefix(strings.TrimSpace(v), "+")
	}
	return ""
}

// MultipartSMSLimit is `multipart_sms_limit` (default 10).
func (s *Settings) MultipartSMSLimit() int {
	if n := s.Int("multipart_sms_limit", 10); n > 0 {
		return n
	}
	return 10
}

// DuplicateLimit is `sms.duplicate_limit`: default 5, invalid or ≤ 0 → 5, at most 20.
func (s *Settings) DuplicateLimit() int {
	n := s.Int("sms.duplicate_limit", 5)
	if n <= 0 {
		return 5
	}
	if n > 20 {
		return 20
	}
	return n
}

// DefaultToSender is `sms.default_to_sender` (default true).
func (s *Settings) DefaultToSender() bool { return s.Bool("sms.default_to_sender", true) }

// ClearFailingSchedules is `sms.clear_failing_schedules` (default false).
func (s *Settings) ClearFailingSchedules() bool {
	return s.Bool("sms.clear_failing_schedules", false)
}

// SendWindow returns the morning and evening limits of the sending window as
// minutes since midnight (defaults 00:00 and 23:00; an evening hour of 0 reads as 23).
func (s *Settings) SendWindow() (from, to int) {
	mh, mm := s.Int("schedule_morning_hours", 0), s.Int("schedule_morning_minutes", 0)
	eh, em := s.Int("schedule_evening_hours", 23), s.Int("schedule_evening_minutes", 0)
	if eh == 0 {
		eh = 23
	}
	return mh*60 + mm, eh*60 + em
}

// SyntheticDate parses `synthetic_date` ("YYYYMMDD[HH[MM]]", hour default 12)
// in loc; ok is false when unset or invalid.
func (s *Settings) SyntheticDate(loc *time.Location) (time.Time, bool) {
	v := strings.TrimSpace(s.String("synthetic_date", ""))
	if len(v) < 8 {
		return time.Time{}, false
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return time.Time{}, false
		}
	}
	y, _ := strconv.Atoi(v[0:4])
	mo, _ := strconv.Atoi(v[4:6])
	d, _ := strconv.Atoi(v[6:8])
	h, mi := 12, 0
	if len(v) >= 10 {
		h, _ = strconv.Atoi(v[8:10])
	}
	if len(v) >= 12 {
		mi, _ = strconv.Atoi(v[10:12])
	}
	if mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, 0, 0, loc), true
}

// Form returns settings.forms[code] (nil when not configured).
func (s *Settings) Form(code string) map[string]any {
	forms := jsv.Map(s.Raw["forms"])
	if forms == nil {
		return nil
	}
	return jsv.Map(forms[code])
}

// HasForm reports whether code is a key of settings.forms.
func (s *Settings) HasForm(code string) bool {
	forms := jsv.Map(s.Raw["forms"])
	_, ok := forms[code]
	return ok
}
