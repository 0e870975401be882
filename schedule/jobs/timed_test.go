package jobs

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestTimerFiresOncePerInstant(t *testing.T) {
	ctx := context.Background()
	var tm Timer
	var runs atomic.Int32
	now := time.Date(2024, 5, 1, 2, 0, 0, 0, time.UTC)
	work := func(context.Context) { runs.Add(1) }
	tm.Arm(ctx, now, now, work)
	time.Sleep(50 * time.Millisecond)
	tm.Wait()
	// A tick just after re-arms the same instant: it must not run again.
	tm.Arm(ctx, now, now.Add(300*time.Millisecond), work)
	time.Sleep(50 * time.Millisecond)
	tm.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("ran %d times, want 1", n)
	}
}

func TestTimerRearmCancelsAndBusySkips(t *testing.T) {
	ctx := context.Background()
	var tm Timer
	var runs atomic.Int32
	now := time.Now()
	tm.Arm(ctx, now.Add(time.Hour), now, func(context.Context) { runs.Add(1) })
	release := make(chan struct{})
	started := make(chan struct{})
	tm.Arm(ctx, now, now, func(context.Context) { runs.Add(1); close(started); <-release })
	<-started
	// Fires while the previous run is going: does nothing.
	tm.Arm(ctx, now.Add(time.Second), now.Add(time.Second), func(context.Context) { runs.Add(100) })
	time.Sleep(50 * time.Millisecond)
	close(release)
	tm.Wait()
	tm.Stop()
	if n := runs.Load(); n != 1 {
		t.Fatalf("runs = %d, want 1 (the hour-later timer cancelled, the busy one skipped)", n)
	}
}

func TestFakeClock(t *testing.T) {
	real := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return real }
	c, err := FakeClock("2024-05-01T01:59:40.000Z", now)
	if err != nil {
		t.Fatal(err)
	}
	real = real.Add(25 * time.Second)
	if got := c(); !got.Equal(time.Date(2024, 5, 1, 2, 0, 5, 0, time.UTC)) {
		t.Errorf("clock = %v", got)
	}
	if _, err := FakeClock("yesterday", now); err == nil {
		t.Error("a bad instant is accepted")
	}
}
