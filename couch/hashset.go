package couch

import (
	"slices"
)

// keyHash is the index's 64-bit hash of ids, keys and shortcodes: FNV-1a,
// fixed rather than seeded per process, so that a snapshot written by one
// process means the same to the next. A collision can only add a candidate
// (checked against its doc), make a free shortcode look taken, or cost the
// read of a doc that does not exist (see Index).
func keyHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// hashSet is a set of hashes that costs about 8 bytes per member: a sorted
// slice, plus the members added since the last merge in a small map. A Go
// map costs 3–5 times that per entry, and the sets of doc ids and shortcodes
// hold an entry per doc: on a large database they were most of the memory.
type hashSet struct {
	sorted []uint64
	recent map[uint64]struct{}
}

// mergeAt is how many recent members a set of n sorted ones keeps in its
// map before merging them: at least minRecent, else n/16, so that merging
// (linear) costs about 16 moves per member added.
func mergeAt(n int) int { return max(minRecent, n/16) }

// minRecent is the smallest merge threshold.
const minRecent = 4096

func newHashSet() *hashSet { return &hashSet{recent: map[uint64]struct{}{}} }

// has reports whether h is a member.
func (s *hashSet) has(h uint64) bool {
	if _, ok := s.recent[h]; ok {
		return true
	}
	_, ok := slices.BinarySearch(s.sorted, h)
	return ok
}

// add makes h a member.
func (s *hashSet) add(h uint64) {
	if s.has(h) {
		return
	}
	s.recent[h] = struct{}{}
	if len(s.recent) >= mergeAt(len(s.sorted)) {
		s.merge()
	}
}

// len is the number of members.
func (s *hashSet) len() int { return len(s.sorted) + len(s.recent) }

// merge moves the recent members into the sorted slice, in place from its
// end (the slice grows once, no second copy of it is made).
func (s *hashSet) merge() {
	if len(s.recent) == 0 {
		return
	}
	add := make([]uint64, 0, len(s.recent))
	for h := range s.recent {
		add = append(add, h)
	}
	slices.Sort(add)
	n := len(s.sorted)
	s.sorted = slices.Grow(s.sorted, len(add))[:n+len(add)]
	i, j := n-1, len(add)-1
	for k := len(s.sorted) - 1; j >= 0; k-- {
		if i >= 0 && s.sorted[i] > add[j] {
			s.sorted[k] = s.sorted[i]
			i--
		} else {
			s.sorted[k] = add[j]
			j--
		}
	}
	clear(s.recent)
}

// members returns every member in ascending order (merging first); the
// slice is the set's own: read it under the lock that guards the set.
func (s *hashSet) members() []uint64 {
	s.merge()
	return s.sorted
}

// hashSetOf returns a set of sorted, distinct members (a decoded snapshot).
func hashSetOf(sorted []uint64) *hashSet {
	return &hashSet{sorted: sorted, recent: map[uint64]struct{}{}}
}
