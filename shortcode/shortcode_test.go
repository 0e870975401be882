package shortcode

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func TestCheckDigit(t *testing.T) {
	cases := []struct {
		digits []int
		want   int
	}{
		{[]int{1, 2, 3, 4}, 8},
		{[]int{1, 3, 2, 4}, 9},
		{[]int{0, 0, 0, 0}, 0},
	}
	for _, c := range cases {
		if got := CheckDigit(c.digits); got != c.want {
			t.Errorf("CheckDigit(%v) = %d, want %d", c.digits, got, c.want)
		}
	}
}

func TestRandomLength(t *testing.T) {
	for l := MinLength; l <= MaxLength; l++ {
		for i := 0; i < 50; i++ {
			c, err := Random(l)
			if err != nil || len(c) != l {
				t.Fatalf("Random(%d) = %q, %v", l, c, err)
			}
			ds := make([]int, l-1)
			for j := range ds {
				ds[j] = int(c[j] - '0')
			}
			if int(c[l-1]-'0') != CheckDigit(ds) {
				t.Fatalf("bad check digit in %s", c)
			}
		}
	}
}

var errNotFound = errors.New("not found")

type fakeStore struct {
	used   func(string) bool
	length map[string]any
	puts   int
}

func (f *fakeStore) UsedShortcodes(_ context.Context, codes []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, c := range codes {
		if f.used(c) {
			out[c] = true
		}
	}
	return out, nil
}
func (f *fakeStore) Get(context.Context, string) (map[string]any, error) {
	if f.length == nil {
		return nil, errNotFound
	}
	return f.length, nil
}
func (f *fakeStore) Put(_ context.Context, d map[string]any) error {
	f.puts++
	f.length = d
	return nil
}

func TestGeneratorGrows(t *testing.T) {
	// Every 5-digit code is taken: the generator must move to 6 and save it.
	st := &fakeStore{used: func(c string) bool { return len(c) == 5 }}
	g := &Generator{Store: st, IsNotFound: func(err error) bool { return errors.Is(err, errNotFound) }}
	c, err := g.Next(context.Background())
	if err != nil || len(c) != 6 {
		t.Fatalf("Next = %q, %v", c, err)
	}
	if st.length["current_length"] != 6.0 || st.puts != 1 {
		t.Fatalf("length doc = %v (puts %d)", st.length, st.puts)
	}
	// Admin raised the length to 7: used at once.
	st.length["current_length"] = 7.0
	c, _ = g.Next(context.Background())
	if len(c) != 7 {
		t.Fatalf("after admin edit got %q", c)
	}
}

func TestGeneratorRandSource(t *testing.T) {
	// The same random bytes give the same code; none given means crypto/rand.
	st := &fakeStore{used: func(string) bool { return false }}
	next := func(r io.Reader) string {
		c, err := (&Generator{Store: st, IsNotFound: func(err error) bool { return errors.Is(err, errNotFound) }, Rand: r}).Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	seed := [32]byte{7}
	a, b := next(rand.NewChaCha8(seed)), next(rand.NewChaCha8(seed))
	if a != b || len(a) != MinLength {
		t.Fatalf("codes from one seed: %q, %q", a, b)
	}
	if c := next(nil); len(c) != MinLength {
		t.Fatalf("code from crypto/rand: %q", c)
	}
}
