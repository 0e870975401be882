package transitions

import (
	"testing"
)

func TestSortByOwner(t *testing.T) {
	a := Doc{"_id": "b-late", "reported_date": 300.0}
	b := Doc{"_id": "c-early", "reported_date": 100.0}
	c := Doc{"_id": "a-undated"}
	d := Doc{"_id": "d-early-too", "reported_date": 100.0}
	tests := []struct {
		name     string
		contacts []Doc
		rule     PhoneOwner
		want     string
	}{
		{"reference: smallest _id", []Doc{a, b, c}, PhoneOwnerSmallestID, "a-undated"},
		{"first registrant", []Doc{a, b, c}, PhoneOwnerFirstRegistrant, "c-early"},
		{"first registrant tie: smallest _id", []Doc{d, a, b}, PhoneOwnerFirstRegistrant, "c-early"},
		{"owner deleted: next earliest", []Doc{a, c}, PhoneOwnerFirstRegistrant, "b-late"},
		{"only undated", []Doc{c}, PhoneOwnerFirstRegistrant, "a-undated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := append([]Doc(nil), tt.contacts...)
			SortByOwner(cs, tt.rule)
			if id, _ := cs[0]["_id"].(string); id != tt.want {
				t.Errorf("owner = %v, want %s", cs[0], tt.want)
			}
		})
	}
	for _, s := range []string{"", "smallest-id", "first-registrant"} {
		if _, err := ParsePhoneOwner(s); err != nil {
			t.Errorf("ParsePhoneOwner(%q): %v", s, err)
		}
	}
	if _, err := ParsePhoneOwner("newest"); err == nil {
		t.Error("ParsePhoneOwner(newest): no error")
	}
}
