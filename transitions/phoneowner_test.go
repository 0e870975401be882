package transitions

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsexpr"
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

// TestPhoneOwnerInUpdateSentBy: two contacts share a number; the report is
// attributed to the smallest _id by default and to the earliest registrant
// with PhoneOwnerFirstRegistrant.
func TestPhoneOwnerInUpdateSentBy(t *testing.T) {
	for _, tt := range []struct {
		rule PhoneOwner
		want string
	}{
		{PhoneOwnerSmallestID, "Alice (newer, smaller id)"},
		{PhoneOwnerFirstRegistrant, "Bob (first registrant)"},
	} {
		main := newMemStore(
			Doc{"_id": "a-contact", "type": "person", "phone": "+254700000001", "name": "Alice (newer, smaller id)", "reported_date": 2000.0},
			Doc{"_id": "b-contact", "type": "person", "phone": "+254700000001", "name": "Bob (first registrant)", "reported_date": 1000.0},
			Doc{"_id": "r1", "type": "data_record", "from": "+254700000001", "form": "X"},
		)
		cfg := Load(map[string]any{"transitions": map[string]any{"update_sent_by": true}}, nil)
		p := &Processor{Main: main, Sentinel: newMemStore(), Log: zerolog.Nop(), Location: time.UTC,
			JS: jsexpr.NewSandbox(jsexpr.Options{}), PhoneOwner: tt.rule}
		if _, err := p.Process(context.Background(), cfg, couch.Change{ID: "r1", Seq: "1"}); err != nil {
			t.Fatal(err)
		}
		doc, _ := main.Get(context.Background(), "r1")
		if doc["sent_by"] != tt.want {
			t.Errorf("rule %d: sent_by = %v, want %q", tt.rule, doc["sent_by"], tt.want)
		}
	}
}
