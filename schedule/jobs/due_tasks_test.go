package jobs

import (
	"testing"
	"time"
)

func TestInSendWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2024, 5, 1, h, m, 0, 0, time.UTC) }
	cases := []struct {
		from, to int
		now      time.Time
		want     bool
	}{
		{0, 23 * 60, at(23, 0), true},
		{0, 23 * 60, at(23, 1), false},
		{8 * 60, 17 * 60, at(7, 59), false},
		{8 * 60, 17 * 60, at(8, 0), true},
		{22 * 60, 6 * 60, at(23, 0), false}, // overnight windows never match
	}
	for _, c := range cases {
		if got := InSendWindow(c.from, c.to, c.now); got != c.want {
			t.Errorf("InSendWindow(%d, %d, %s) = %v", c.from, c.to, c.now.Format("15:04"), got)
		}
	}
}
