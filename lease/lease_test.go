package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// clock is a fake monotonic clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// store is an in-memory lease document with CouchDB's revision rule. fail
// makes the next calls fail; latency advances the clock between a Put's
// send and its commit; lostAnswer stores a Put but answers with an error.
type store struct {
	clk        *clock
	rec        *Record
	rev        int
	fail       int
	latency    time.Duration
	lostAnswer bool
}

var errDown = errors.New("server down")

func (s *store) Get(context.Context) (Record, string, error) {
	if s.fail > 0 {
		s.fail--
		return Record{}, "", errDown
	}
	if s.rec == nil {
		return Record{}, "", ErrNotFound
	}
	return *s.rec, strconv.Itoa(s.rev), nil
}

func (s *store) Put(_ context.Context, r Record, rev string) (string, error) {
	if s.fail > 0 {
		s.fail--
		return "", errDown
	}
	s.clk.advance(s.latency)
	cur := ""
	if s.rec != nil {
		cur = strconv.Itoa(s.rev)
	}
	if rev != cur {
		return "", ErrConflict
	}
	s.rev++
	s.rec = &r
	if s.lostAnswer {
		s.lostAnswer = false
		return "", errDown
	}
	return strconv.Itoa(s.rev), nil
}

func newLease(t *testing.T, s *store, instance string, stable string) *Lease {
	t.Helper()
	return newSkewed(t, s, instance, stable, 0)
}

// newSkewed is an instance whose wall clock is off by skew.
func newSkewed(t *testing.T, s *store, instance string, stable string, skew time.Duration) *Lease {
	t.Helper()
	wall := func() time.Time { return s.clk.now().Add(skew) }
	l, err := New(Options{Store: s, Instance: instance, Holder: stable, Stable: stable != "", Now: s.clk.now, Wall: wall})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func step(t *testing.T, l *Lease) bool {
	t.Helper()
	held, _, _ := l.Step(context.Background())
	return held
}

func TestElection(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *store, a, b *Lease)
	}{
		{"the first instance takes a missing lease at once", func(t *testing.T, s *store, a, b *Lease) {
			if !step(t, a) || a.Token() != 1 || a.Check() != nil {
				t.Fatalf("held %v token %d", a.Check() == nil, a.Token())
			}
			if step(t, b) || b.Check() == nil {
				t.Fatal("a second instance holds a renewed lease")
			}
		}},
		{"a standby takes over a lease not renewed for a TTL, with the next token", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			step(t, b) // sees a's revision
			for i := 0; i < 3; i++ {
				s.clk.advance(5 * time.Second)
				if a.Check() == nil && b.Check() == nil {
					t.Fatal("two holders")
				}
				step(t, b)
			}
			if b.Token() != 2 || b.Check() != nil {
				t.Fatalf("b token %d", b.Token())
			}
			if a.Check() == nil {
				t.Fatal("a still believes it holds the lease past its deadline")
			}
		}},
		{"a standby does not take a lease that is being renewed", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			for i := 0; i < 20; i++ {
				step(t, b)
				s.clk.advance(5 * time.Second)
				if !step(t, a) {
					t.Fatal("a lost a lease it renewed")
				}
			}
			if b.Check() == nil || a.Token() != 1 {
				t.Fatal("b took a renewed lease")
			}
		}},
		{"a 409 on renewal loses the lease at once", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			s.rec.Holder, s.rec.Instance = "someone", "someone"
			s.rev++
			if step(t, a) || a.Check() == nil || a.Token() != 0 {
				t.Fatal("a kept a lease another instance took")
			}
		}},
		{"failed renewals keep the lease until the local deadline only", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			s.fail = 1000
			s.clk.advance(5 * time.Second)
			if !step(t, a) || a.Check() != nil {
				t.Fatal("one failed renewal lost the lease")
			}
			s.clk.advance(7 * time.Second) // 12 s = TTL - TTL/5
			if a.Check() == nil {
				t.Fatal("the lease is still held past the local deadline without any step")
			}
			if step(t, a) {
				t.Fatal("the lease is held past the local deadline")
			}
		}},
		{"a renewal stored but unanswered is recognised", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			s.lostAnswer = true
			step(t, a)
			if !step(t, a) || a.Token() != 1 {
				t.Fatal("a lost its lease to its own renewal")
			}
		}},
		{"a released lease is taken at once", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			step(t, b)
			if err := a.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
			if a.Check() == nil || !step(t, b) || b.Token() != 2 {
				t.Fatal("the released lease was not taken over at once")
			}
		}},
		{"a new process waits a TTL for a lease of its own host's previous process", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			a2 := newLease(t, s, "a2", "")
			if step(t, a2) {
				t.Fatal("a process took a lease that is not its own")
			}
		}},
		{"a new process takes a lease expired on its wall clock at once", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			s.clk.advance(14 * time.Second) // a is dead: expired 1 s after its deadline
			if c := newLease(t, s, "c", ""); step(t, c) {
				t.Fatal("taken before expires + Safety")
			}
			s.clk.advance(5 * time.Second)
			if c := newLease(t, s, "d", ""); !step(t, c) || c.Token() != 2 {
				t.Fatal("a new process waited a TTL for a lease long expired")
			}
		}},
		{"a lease document created anew starts above the floor", func(t *testing.T, s *store, a, b *Lease) {
			l, err := New(Options{Store: s, Instance: "f", Now: s.clk.now,
				Floor: func(context.Context) (int64, error) { return 7, nil }})
			if err != nil {
				t.Fatal(err)
			}
			if !step(t, l) || l.Token() != 8 {
				t.Fatalf("token %d, want 8", l.Token())
			}
		}},
		{"a stable id takes its previous run's lease at once", func(t *testing.T, s *store, a, b *Lease) {
			x := newLease(t, s, "x1", "node-1")
			step(t, x)
			x2 := newLease(t, s, "x2", "node-1")
			if !step(t, x2) || x2.Token() != 2 {
				t.Fatal("a restarted instance with a stable id waited for its own lease")
			}
			if step(t, x) {
				t.Fatal("the previous run kept the lease")
			}
		}},
		{"of two contenders for an expired lease, one wins", func(t *testing.T, s *store, a, b *Lease) {
			step(t, a)
			c := newLease(t, s, "c", "")
			step(t, b)
			step(t, c)
			s.clk.advance(15 * time.Second)
			hb, hc := step(t, b), step(t, c)
			if hb == hc {
				t.Fatalf("b %v c %v", hb, hc)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &store{clk: &clock{t: time.Unix(1000, 0)}}
			tt.run(t, s, newLease(t, s, "a", ""), newLease(t, s, "b", ""))
		})
	}
}

// TestNeverTwoHolders runs three instances against one store with random
// schedules, pauses, latencies, outages and lost answers, and checks after
// every event that at most one of them may write.
func TestNeverTwoHolders(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			s := &store{clk: &clock{t: time.Unix(1000, 0)}}
			// Wall clocks up to 5.8 s apart: under 2×Safety.
			ls := []*Lease{newSkewed(t, s, "a", "", -2900*time.Millisecond), newSkewed(t, s, "b", "", 2900*time.Millisecond),
				newLease(t, s, "c", "node-c")}
			takeovers := 0
			last := int64(0)
			for i := 0; i < 2000; i++ {
				s.latency = time.Duration(rng.IntN(3000)) * time.Millisecond
				if rng.IntN(50) == 0 {
					s.fail = rng.IntN(5)
				}
				s.lostAnswer = rng.IntN(40) == 0
				l := ls[rng.IntN(len(ls))]
				switch rng.IntN(10) {
				case 0:
					s.clk.advance(time.Duration(rng.IntN(20000)) * time.Millisecond) // a pause
				case 1:
					_ = l.Release(context.Background())
				default:
					step(t, l)
					s.clk.advance(time.Duration(rng.IntN(2000)) * time.Millisecond)
				}
				holders := 0
				for _, x := range ls {
					if x.Check() == nil {
						holders++
						if tok := x.Token(); tok < last {
							t.Fatalf("event %d: token went back from %d to %d", i, last, tok)
						} else if tok > last {
							last = tok
							takeovers++
						}
					}
				}
				if holders > 1 {
					t.Fatalf("event %d: %d holders", i, holders)
				}
			}
			if takeovers < 2 {
				t.Fatalf("only %d acquisitions: the schedule tests nothing", takeovers)
			}
		})
	}
}
