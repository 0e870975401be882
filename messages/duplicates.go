package messages

import (
	"sync"
	"time"
)

// Duplicates counts identical immediate messages (same recipient and text)
// per process, so that a loop cannot flood a phone: past the limit a new
// one is `duplicate`. An entry expires 30 minutes after its latest use.
type Duplicates struct {
	mu        sync.Mutex
	entries   map[dupKey]*dupEntry
	lastSweep time.Time
}

type dupKey struct{ to, text string }

type dupEntry struct {
	count int
	last  time.Time
}

// dupTTL is how long a count lives after its latest occurrence.
const dupTTL = 30 * time.Minute

// NewDuplicates returns an empty counter.
func NewDuplicates() *Duplicates { return &Duplicates{entries: map[dupKey]*dupEntry{}} }

// Seen records one more (to, text) at now and reports whether the count is
// now over limit.
func (d *Duplicates) Seen(to, text string, limit int, now time.Time) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Expired entries are swept at most once a minute: sweeping on every
	// call once past 10,000 live entries made a reply-heavy catch-up
	// quadratic.
	if len(d.entries) > 10000 && now.Sub(d.lastSweep) >= time.Minute {
		d.lastSweep = now
		for k, e := range d.entries {
			if now.Sub(e.last) > dupTTL {
				delete(d.entries, k)
			}
		}
	}
	k := dupKey{to, text}
	e := d.entries[k]
	if e == nil || now.Sub(e.last) > dupTTL {
		e = &dupEntry{}
		d.entries[k] = e
	}
	e.count++
	e.last = now
	return e.count > limit
}
