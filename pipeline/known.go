package pipeline

import (
	"hash/fnv"
	"slices"
	"sync"

	"sentinel-go/transitions"
)

// Known remembers the revisions of docs whose work is done under one
// config: changes that every enabled transition refused from the doc as
// stored and its info doc alone (the prefilter; see
// transitions.RefusedUnhydrated). When such a revision comes again (a feed
// that rewound, a replay after a crash, a restart from an old checkpoint),
// the change is passed over without reading its info doc: the prefilter
// would decide the same from the same doc, info doc and config. Only that
// decision is remembered, never one that depended on a lookup.
//
// What it cannot see: an info doc whose transition records another writer
// removed since (to force a rerun, touch the doc instead: a new revision is
// never known). A config change forgets everything.
//
// Entries are 64-bit hashes of id and revision (FNV-1a, the same in every
// process, so that a set saved by one run serves the next).
type Known struct {
	mu  sync.Mutex
	fp  string // the fingerprint of the config the entries hold for
	set map[uint64]struct{}
	max int
}

// knownRev is a revision to record in Known, and the config it holds for.
type knownRev struct{ rev, fp string }

// NewKnown returns an empty set of at most max entries (it starts over when
// full; 0 means 1,000,000, about 20 MB).
func NewKnown(max int) *Known {
	if max <= 0 {
		max = 1_000_000
	}
	return &Known{set: map[uint64]struct{}{}, max: max}
}

// KnownKey is the entry of revision rev of doc id.
func KnownKey(id, rev string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(rev))
	return h.Sum64()
}

// use makes cfg the config in force: entries made under another are
// forgotten.
func (k *Known) use(cfg *transitions.Config) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.under(cfg.Fingerprint)
}

// under makes fp the config in force (k.mu held).
func (k *Known) under(fp string) {
	if k.fp != fp {
		k.fp = fp
		clear(k.set)
	}
}

// has reports whether rev of id is known done under cfg.
func (k *Known) has(cfg *transitions.Config, id, rev string) bool {
	if rev == "" {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if cfg == nil || cfg.Fingerprint == "" || k.fp != cfg.Fingerprint {
		return false
	}
	_, ok := k.set[KnownKey(id, rev)]
	return ok
}

// mayHave is has under the config in force (before a change's config is
// known: its info doc is then not read ahead; has decides).
func (k *Known) mayHave(id, rev string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fp == "" || rev == "" {
		return false
	}
	_, ok := k.set[KnownKey(id, rev)]
	return ok
}

// add records that rev of id is done under cfg.
func (k *Known) add(cfg *transitions.Config, id, rev string) {
	if cfg != nil {
		k.addUnder(cfg.Fingerprint, id, rev)
	}
}

// addUnder records that rev of id is done under the config of fingerprint fp.
func (k *Known) addUnder(fp, id, rev string) {
	if rev == "" || fp == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.under(fp)
	if len(k.set) >= k.max {
		clear(k.set)
	}
	k.set[KnownKey(id, rev)] = struct{}{}
}

// Export returns the entries, sorted, and the fingerprint of the config
// they hold for.
func (k *Known) Export() ([]uint64, string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]uint64, 0, len(k.set))
	for key := range k.set {
		out = append(out, key)
	}
	slices.Sort(out)
	return out, k.fp
}

// Import adds entries saved (Export) by an earlier run under the config of
// fingerprint fp; they serve only while that config is in force.
func (k *Known) Import(fp string, keys []uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.under(fp)
	for _, key := range keys {
		if len(k.set) >= k.max {
			return
		}
		k.set[key] = struct{}{}
	}
}

// Len is the number of entries.
func (k *Known) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.set)
}
