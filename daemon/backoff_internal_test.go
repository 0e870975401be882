package daemon

import (
	"testing"
	"time"
)

func TestChangeBackoff(t *testing.T) {
	cases := []struct {
		attempt int
		max     time.Duration
		want    time.Duration
	}{
		{1, time.Minute, 500 * time.Millisecond},
		{2, time.Minute, time.Second},
		{4, time.Minute, 4 * time.Second},
		{8, time.Minute, time.Minute},
		{1000, time.Minute, time.Minute},
		{3, 700 * time.Millisecond, 700 * time.Millisecond},
		{1, 100 * time.Millisecond, 500 * time.Millisecond}, // the first wait, as before
		{2, 100 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, c := range cases {
		if got := changeBackoff(c.attempt, c.max); got != c.want {
			t.Errorf("changeBackoff(%d, %v) = %v, want %v", c.attempt, c.max, got, c.want)
		}
	}
}
