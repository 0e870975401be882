package sms

import (
	"sort"

	"sentinel-go/jsv"
)

// OwnerRule chooses which contact an incoming number is attributed to when
// several contacts share the exact same `phone` (spec §9). The SMS path
// itself attributes nothing: it stores `from` normalised, so that the
// transitions' exact-equality lookups (update_clinics, update_sent_by,
// self_report, registration) find contacts stored with normalised numbers.
// The rule is exported for those lookups.
type OwnerRule int

const (
	// OwnerSmallestID is the reference behaviour and the default: the first
	// row of the phone view, i.e. the smallest `_id` in raw byte order.
	OwnerSmallestID OwnerRule = iota
	// OwnerFirstRegistrant is the optional "first registrant owns the
	// number": the earliest `reported_date`, contacts without one last,
	// ties broken by the smallest `_id`. When the owner is deleted (absent
	// from the lookup), the next earliest takes over.
	OwnerFirstRegistrant
)

// Owner returns the contact owning a number among contacts (all the
// non-deleted contacts whose `phone` equals it exactly), nil when there are
// none. contacts is not modified.
func Owner(contacts []map[string]any, rule OwnerRule) map[string]any {
	if len(contacts) == 0 {
		return nil
	}
	sorted := append([]map[string]any(nil), contacts...)
	id := func(c map[string]any) string { return jsv.String(c["_id"]) }
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if rule == OwnerFirstRegistrant {
			ra, okA := a["reported_date"].(float64)
			rb, okB := b["reported_date"].(float64)
			switch {
			case okA && !okB:
				return true
			case !okA && okB:
				return false
			case okA && okB && ra != rb:
				return ra < rb
			}
		}
		return id(a) < id(b)
	})
	return sorted[0]
}
