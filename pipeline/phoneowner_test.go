package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/memdb"
	"sentinel-go/transitions"
)

// TestPhoneOwnerInUpdateSentBy: two contacts share a number; the report is
// attributed to the smallest _id by default and to the earliest registrant
// with PhoneOwnerFirstRegistrant.
func TestPhoneOwnerInUpdateSentBy(t *testing.T) {
	for _, tt := range []struct {
		rule transitions.PhoneOwner
		want string
	}{
		{transitions.PhoneOwnerSmallestID, "Alice (newer, smaller id)"},
		{transitions.PhoneOwnerFirstRegistrant, "Bob (first registrant)"},
	} {
		main := memdb.New("medic").Load(
			transitions.Doc{"_id": "a-contact", "type": "person", "phone": "+254700000001", "name": "Alice (newer, smaller id)", "reported_date": 2000.0},
			transitions.Doc{"_id": "b-contact", "type": "person", "phone": "+254700000001", "name": "Bob (first registrant)", "reported_date": 1000.0},
			transitions.Doc{"_id": "r1", "type": "data_record", "from": "+254700000001", "form": "X"},
		)
		cfg := transitions.Load(map[string]any{"transitions": map[string]any{"update_sent_by": true}}, nil)
		p := &Engine{Main: main, Sentinel: memdb.New("medic-sentinel"), Log: zerolog.Nop(), Location: time.UTC,
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
