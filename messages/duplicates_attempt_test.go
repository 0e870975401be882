package messages

import (
	"testing"
	"time"
)

func TestDuplicatesAttemptRevert(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDuplicates()
	first := d.Attempt()
	if first.Seen("+1", "hi", 1, now) {
		t.Fatal("first message counted as a duplicate")
	}
	first.Revert() // the attempt was abandoned
	retry := d.Attempt()
	if retry.Seen("+1", "hi", 1, now) {
		t.Error("the retry's message counted the abandoned attempt's")
	}
	if !d.Attempt().Seen("+1", "hi", 1, now) {
		t.Error("a second kept message is not counted as a duplicate")
	}
	var none *Duplicates
	if none.Attempt().Seen("+1", "hi", 0, now) {
		t.Error("nil counter counts")
	}
	none.Attempt().Revert()
}
