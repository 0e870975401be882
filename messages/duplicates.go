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
	// parent, when set, is the counter this one counts into (see Attempt);
	// added lists what it counted there, for Revert.
	parent *Duplicates
	added  []dupKey
}

// dupKey is what is counted: a recipient and a text, or a recipient and no
// text at all (a message that failed to generate), kept apart from any text.
type dupKey struct {
	to, text string
	noText   bool
}

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
	return d.seen(dupKey{to: to, text: text}, limit, now)
}

// SeenTextless is Seen for a message without text (`error` instead of
// `message`): those count too, under (to, no text) (messages.md §7).
func (d *Duplicates) SeenTextless(to string, limit int, now time.Time) bool {
	return d.seen(dupKey{to: to, noText: true}, limit, now)
}

func (d *Duplicates) seen(k dupKey, limit int, now time.Time) bool {
	if d == nil {
		return false
	}
	if d.parent != nil {
		d.added = append(d.added, k)
		return d.parent.seen(k, limit, now)
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
	e := d.entries[k]
	if e == nil || now.Sub(e.last) > dupTTL {
		e = &dupEntry{}
		d.entries[k] = e
	}
	e.count++
	e.last = now
	return e.count > limit
}

// Attempt returns a counter for one attempt at processing a change: it
// counts into d (later changes see its counts, as one at a time) and
// remembers what it counted, so that an attempt that is abandoned (retried
// after a conflict, redone after a failed commit) takes its counts back
// with Revert instead of making the retry's messages look duplicated.
func (d *Duplicates) Attempt() *Duplicates {
	if d == nil {
		return nil
	}
	return &Duplicates{parent: d}
}

// Revert takes back what an Attempt counted (once).
func (d *Duplicates) Revert() {
	if d == nil || d.parent == nil {
		return
	}
	p := d.parent
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range d.added {
		if e := p.entries[k]; e != nil {
			e.count--
			if e.count <= 0 {
				delete(p.entries, k)
			}
		}
	}
	d.added = nil
}
