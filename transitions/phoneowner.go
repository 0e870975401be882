package transitions

import (
	"context"
	"fmt"
	"sort"

	"sentinel-go/jsv"
)

// PhoneOwner chooses which contact an incoming number is attributed to when
// several contacts share the exact same `phone` (sms.md §9). The same rule
// applies in the four transitions that attribute a number: registration (the
// parent of a created contact), update_clinics, update_sent_by and
// self_report.
type PhoneOwner int

const (
	// PhoneOwnerSmallestID is CHT's behaviour and the default: the first row
	// of the phone lookup, i.e. the smallest `_id` in raw byte order.
	PhoneOwnerSmallestID PhoneOwner = iota
	// PhoneOwnerFirstRegistrant is the optional "first registrant owns the
	// number": the earliest `reported_date`, contacts without one last, ties
	// broken by the smallest `_id`. When the owner is deleted (absent from
	// the lookup), the next earliest takes over.
	PhoneOwnerFirstRegistrant
)

// ParsePhoneOwner reads the --phone-owner flag value.
func ParsePhoneOwner(s string) (PhoneOwner, error) {
	switch s {
	case "", "smallest-id":
		return PhoneOwnerSmallestID, nil
	case "first-registrant":
		return PhoneOwnerFirstRegistrant, nil
	}
	return 0, fmt.Errorf("unknown phone owner rule %q (smallest-id or first-registrant)", s)
}

// SortByOwner orders contacts sharing a number so that the owner comes
// first under rule. contacts is sorted in place.
func SortByOwner(contacts []Doc, rule PhoneOwner) {
	id := func(c Doc) string { return jsv.String(c["_id"]) }
	sort.SliceStable(contacts, func(i, j int) bool {
		a, b := contacts[i], contacts[j]
		if rule == PhoneOwnerFirstRegistrant {
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
}

// contactsByPhone returns the contacts whose `phone` is exactly phone, the
// owner of the number first (Env.PhoneOwner).
func contactsByPhone(ctx context.Context, env *Env, phone string) ([]Doc, error) {
	found, err := env.Store.ContactsByPhone(ctx, phone)
	if err != nil {
		return nil, err
	}
	SortByOwner(found, env.PhoneOwner)
	return found, nil
}
