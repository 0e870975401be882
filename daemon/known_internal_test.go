package daemon

import (
	"slices"
	"testing"
)

func TestKnownEncoding(t *testing.T) {
	for _, keys := range [][]uint64{nil, {1}, {0, 1 << 63, 42, ^uint64(0)}} {
		got, err := decodeKnown(encodeKnown(keys))
		if err != nil || !slices.Equal(got, keys) && len(keys) > 0 {
			t.Errorf("round trip of %v: %v, %v", keys, got, err)
		}
	}
	for _, bad := range []string{"not base64!", "AAAA"} {
		if _, err := decodeKnown(bad); err == nil {
			t.Errorf("decodeKnown(%q): no error", bad)
		}
	}
}
