// Package phone validates, normalises and compares phone numbers as
// specified in spec/sms.md §5, using Google's libphonenumber (Go port
// github.com/nyaruka/phonenumbers).
//
// Settings involved:
//   - default_country_code: a calling code such as "254". Its main region
//     (KE) is the region national numbers are read in; numbers starting with
//     '+' ignore it; without a usable code only '+' numbers can be valid.
//   - phone_validation: "full" (default; libphonenumber validity), "partial"
//     (possible length only) or "none" (anything).
//
// Whatever the mode, a number containing a letter is never valid.
package phone

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// Validation modes of settings.phone_validation.
const (
	ValidationFull    = "full"
	ValidationPartial = "partial"
	ValidationNone    = "none"
)

// Region returns the libphonenumber region (e.g. "KE") of a calling code such
// as "254" (a leading '+' and surrounding spaces are tolerated), or "" when the
// code is empty or unknown.
func Region(defaultCountryCode string) string {
	code := strings.TrimPrefix(strings.TrimSpace(defaultCountryCode), "+")
	if code == "" {
		return ""
	}
	n, err := strconv.Atoi(code)
	if err != nil || n <= 0 {
		return ""
	}
	region := phonenumbers.GetRegionCodeForCountryCode(n)
	if region == "" || region == phonenumbers.UNKNOWN_REGION {
		return ""
	}
	return region
}

// hasLetter reports whether s contains any Unicode letter.
func hasLetter(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// parse reads raw in region (or as an international number when region is
// ""). It returns nil when libphonenumber cannot read it.
func parse(raw, region string) *phonenumbers.PhoneNumber {
	if region == "" {
		region = phonenumbers.UNKNOWN_REGION
	}
	num, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return nil
	}
	return num
}

// shortNational returns the national digits of raw when raw (dialled without
// '+') is a valid short number of region, e.g. "100".
func shortNational(raw string, num *phonenumbers.PhoneNumber, region string) (string, bool) {
	if num == nil || region == "" || strings.HasPrefix(strings.TrimSpace(raw), "+") {
		return "", false
	}
	if !phonenumbers.IsValidShortNumberForRegion(num, region) {
		return "", false
	}
	return phonenumbers.GetNationalSignificantNumber(num), true
}

// Normalize returns raw in E.164 form with a leading '+' when it is valid for
// the validation mode, a valid short number of the region in national form
// ("100"), and otherwise raw unchanged with valid=false.
//
// Mode "none" accepts anything that is not empty and has no letter
// (spec: "none anything"); such a number is still normalised when
// libphonenumber can read it as a valid number, else kept raw.
// An empty (or blank) number is never valid: a config author would not
// expect validPhone to accept an empty field.
func Normalize(raw string, defaultCountryCode string, validation string) (normalized string, valid bool) {
	trimmed := strings.TrimSpace(raw)
	if trimmed == "" || hasLetter(trimmed) {
		return raw, false
	}
	region := Region(defaultCountryCode)
	num := parse(trimmed, region)

	switch strings.ToLower(strings.TrimSpace(validation)) {
	case ValidationNone:
		if num != nil && phonenumbers.IsValidNumber(num) {
			return phonenumbers.Format(num, phonenumbers.E164), true
		}
		if national, ok := shortNational(trimmed, num, region); ok {
			return national, true
		}
		return raw, true
	case ValidationPartial:
		if num == nil {
			return raw, false
		}
		if phonenumbers.IsPossibleNumber(num) {
			return phonenumbers.Format(num, phonenumbers.E164), true
		}
		if national, ok := shortNational(trimmed, num, region); ok {
			return national, true
		}
		return raw, false
	default: // "full", the default, and any unknown value
		if num == nil {
			return raw, false
		}
		if phonenumbers.IsValidNumber(num) {
			return phonenumbers.Format(num, phonenumbers.E164), true
		}
		if national, ok := shortNational(trimmed, num, region); ok {
			return national, true
		}
		return raw, false
	}
}

// IsValid reports whether raw is a valid phone number for the settings.
func IsValid(raw, defaultCountryCode, validation string) bool {
	_, ok := Normalize(raw, defaultCountryCode, validation)
	return ok
}

// IsValidInternational is the recipient rule of messages.md §5: it uses no
// settings, so only '+' numbers can pass, with full libphonenumber validity
// ("+123456" is not valid).
func IsValidInternational(raw string) bool {
	s := strings.TrimSpace(raw)
	if !strings.HasPrefix(s, "+") || hasLetter(s) {
		return false
	}
	num := parse(s, "")
	return num != nil && phonenumbers.IsValidNumber(num)
}

func isMatch(m phonenumbers.MatchType) bool {
	return m == phonenumbers.EXACT_MATCH || m == phonenumbers.NSN_MATCH
}

// Same reports whether a and b are the same number for the gateway_number
// deny rule (messages.md §6): a libphonenumber exact or national-number match.
//
// Choices where the spec is silent:
//   - identical (trimmed, non-empty) strings are always the same, even when
//     they are not numbers (alphanumeric sender ids such as "MPESA"), and a
//     string with a letter matches nothing else;
//   - besides libphonenumber's own string comparison (which reads a number
//     without '+' in the other number's region), both numbers are also read
//     in the default_country_code region, so "0712345678" and "712345678"
//     match in Kenya.
func Same(a, b string, defaultCountryCode string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	if hasLetter(a) || hasLetter(b) {
		// Sender ids with letters are not phone numbers: only an identical
		// string matches (libphonenumber would read letters as keypad digits).
		return false
	}
	if isMatch(phonenumbers.IsNumberMatch(a, b)) {
		return true
	}
	region := Region(defaultCountryCode)
	if region == "" {
		return false
	}
	pa, pb := parse(a, region), parse(b, region)
	if pa == nil || pb == nil {
		return false
	}
	return isMatch(phonenumbers.IsNumberMatchWithNumbers(pa, pb))
}
