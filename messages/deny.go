package messages

import (
	"strconv"
	"strings"
	"unicode"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/phone"
)

// Denied reports whether a new task for a report sent by `from` must be
// denied (messages.md §6). The rules test the report's sender, not the
// recipient: they stop reply loops with gateways and operators.
func Denied(s *config.Settings, from string) bool {
	from = strings.TrimSpace(from)
	if from == "" {
		return false
	}
	if gw := s.String("gateway_number", ""); gw != "" && phone.Same(from, gw, s.DefaultCountryCode()) {
		return true
	}
	if n := shorterThan(s.Get("outgoing_deny_shorter_than")); n > 0 && len([]rune(from)) < n {
		return true
	}
	if s.Get("outgoing_deny_with_alphas") == true {
		for _, r := range from {
			if unicode.IsLetter(r) {
				return true
			}
		}
	}
	lower := strings.ToLower(from)
	for _, item := range denyList(s.Get("outgoing_deny_list")) {
		if item = strings.ToLower(strings.TrimSpace(item)); item != "" && strings.HasPrefix(lower, item) {
			return true
		}
	}
	return false
}

func shorterThan(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case string:
		// parseInt semantics: leading digits.
		x = strings.TrimSpace(x)
		end := 0
		for end < len(x) && x[end] >= '0' && x[end] <= '9' {
			end++
		}
		n, _ := strconv.Atoi(x[:end])
		return n
	}
	return 0
}

// denyList accepts the documented comma-separated string and, unlike the
// reference (which throws), an array as seed 001 writes it.
func denyList(v any) []string {
	switch x := v.(type) {
	case string:
		return strings.Split(x, ",")
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, jsv.String(e))
		}
		return out
	}
	return nil
}
