// Package shortcode generates the numeric SMS ids of ids.md: `patient_id`,
// `place_id` and `case_id`. One id space, one generator: random digits with a
// check digit, unique across the main db, growing in length when full.
package shortcode

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Store is what the generator reads and writes in the main db.
type Store interface {
	// UsedShortcodes returns which codes any doc holds as patient_id, place_id or case_id.
	UsedShortcodes(ctx context.Context, codes []string) (map[string]bool, error)
	Get(ctx context.Context, id string) (map[string]any, error)
	Put(ctx context.Context, doc map[string]any) error
}

// LengthDocID is the main-db doc holding the current length.
const LengthDocID = "shortcode-id-length"

// Length limits.
const (
	MinLength = 5
	MaxLength = 13
	// candidates drawn per round.
	candidates = 200
)

// CheckDigit returns the check digit for the random digits ds: weights n+1
// down to 2, sum mod 11, with 10 written as 0.
func CheckDigit(ds []int) int {
	n := len(ds)
	sum := 0
	for i, d := range ds {
		sum += (n + 1 - i) * d
	}
	c := sum % 11
	if c == 10 {
		return 0
	}
	return c
}

// Random returns one candidate of exactly length digits.
func Random(length int) (string, error) {
	return randomFrom(&digitSource{}, length)
}

// digitSource deals uniform random digits from random bytes (r, or
// crypto/rand when nil) read 512 at a time (bytes of 250 and up are
// dropped, so each digit is uniform): one read serves many candidates.
type digitSource struct {
	r   io.Reader
	buf [512]byte
	n   int // unread bytes at the end of buf
}

func (d *digitSource) next() (int, error) {
	for {
		if d.n == 0 {
			r := d.r
			if r == nil {
				r = rand.Reader
			}
			if _, err := io.ReadFull(r, d.buf[:]); err != nil {
				return 0, err
			}
			d.n = len(d.buf)
		}
		b := d.buf[len(d.buf)-d.n]
		d.n--
		if b < 250 {
			return int(b % 10), nil
		}
	}
}

// randomFrom returns one candidate of exactly length digits (random digits
// and their check digit).
func randomFrom(src *digitSource, length int) (string, error) {
	if length < 2 {
		return "", fmt.Errorf("shortcode length %d: too short", length)
	}
	ds := make([]int, length-1)
	out := make([]byte, length)
	for i := range ds {
		d, err := src.next()
		if err != nil {
			return "", err
		}
		ds[i] = d
		out[i] = byte('0' + d)
	}
	out[length-1] = byte('0' + CheckDigit(ds))
	return string(out), nil
}

// Generator makes unique shortcodes.
type Generator struct {
	Store Store
	// IsNotFound and IsConflict classify store errors.
	IsNotFound func(error) bool
	IsConflict func(error) bool
	// Rand is the source of random bytes; nil means crypto/rand (tests
	// give a seeded one to draw the same codes again).
	Rand io.Reader
}

// Next returns an unused shortcode. The length doc is re-read every time so
// that an admin's edit applies at once; it grows (and is saved) only when a
// whole round of candidates is taken.
func (g *Generator) Next(ctx context.Context) (string, error) {
	length, doc, err := g.length(ctx)
	if err != nil {
		return "", err
	}
	for ; length <= MaxLength; length++ {
		codes := make([]string, 0, candidates)
		seen := map[string]bool{}
		src := &digitSource{r: g.Rand}
		for len(codes) < candidates {
			c, err := randomFrom(src, length)
			if err != nil {
				return "", fmt.Errorf("random shortcode: %w", err)
			}
			if !seen[c] {
				seen[c] = true
				codes = append(codes, c)
			}
			if length == MinLength && len(seen) >= 10000 {
				break // the 5-digit space holds 10^4 candidates
			}
		}
		used, err := g.Store.UsedShortcodes(ctx, codes)
		if err != nil {
			return "", fmt.Errorf("check shortcodes: %w", err)
		}
		for _, c := range codes {
			if !used[c] {
				return c, nil
			}
		}
		if length < MaxLength {
			if doc == nil {
				doc = map[string]any{"_id": LengthDocID}
			}
			doc["current_length"] = float64(length + 1)
			if err := g.Store.Put(ctx, doc); err != nil && !g.isConflict(err) {
				return "", fmt.Errorf("save %s: %w", LengthDocID, err)
			}
		}
	}
	return "", errors.New("no unused shortcode left")
}

func (g *Generator) isConflict(err error) bool { return g.IsConflict != nil && g.IsConflict(err) }

func (g *Generator) length(ctx context.Context) (int, map[string]any, error) {
	doc, err := g.Store.Get(ctx, LengthDocID)
	if err != nil {
		if g.IsNotFound != nil && g.IsNotFound(err) {
			return MinLength, nil, nil
		}
		return 0, nil, fmt.Errorf("read %s: %w", LengthDocID, err)
	}
	n := MinLength
	if f, ok := doc["current_length"].(float64); ok {
		n = int(f)
	}
	if n < MinLength {
		n = MinLength
	}
	if n > MaxLength {
		n = MaxLength
	}
	return n, doc, nil
}
