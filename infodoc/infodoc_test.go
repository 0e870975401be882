package infodoc

import "testing"

func TestIDs(t *testing.T) {
	cases := []struct {
		id     string
		docID  string
		isInfo bool
	}{
		{"abc-info", "abc", true},
		{"-info", "", false},
		{"abc", "", false},
		{"a-info-info", "a-info", true},
	}
	for _, c := range cases {
		got, ok := DocID(c.id)
		if got != c.docID || ok != c.isInfo {
			t.Errorf("DocID(%q) = %q, %v; want %q, %v", c.id, got, ok, c.docID, c.isInfo)
		}
		if c.isInfo && ID(got) != c.id {
			t.Errorf("ID(%q) = %q, want %q", got, ID(got), c.id)
		}
	}
	if n := New("x"); n["_id"] != "x-info" || n["doc_id"] != "x" || n["type"] != "info" {
		t.Errorf("New = %v", n)
	}
}
