package graceful

import (
	"context"
	"testing"
	"time"
)

func TestContext(t *testing.T) {
	for _, c := range []struct {
		name         string
		bound, grace time.Duration
		stop         bool
		alive, ended time.Duration // still alive at alive, ended by ended
	}{
		{"no stop: the bound", 50 * time.Millisecond, time.Hour, false, 10 * time.Millisecond, 500 * time.Millisecond},
		{"a stop: the grace", time.Hour, 50 * time.Millisecond, true, 10 * time.Millisecond, 500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.stop {
				cancel()
			}
			pctx, done := Context(ctx, c.bound, c.grace)
			defer done()
			time.Sleep(c.alive)
			if pctx.Err() != nil {
				t.Fatalf("ended before %s", c.alive)
			}
			select {
			case <-pctx.Done():
			case <-time.After(c.ended):
				t.Fatalf("still alive after %s", c.ended)
			}
		})
	}
}
