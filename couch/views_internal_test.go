package couch

import "testing"

// TestEveryViewHasOneDesignDoc: each view belongs to exactly one group, and
// each group names only views that exist.
func TestEveryViewHasOneDesignDoc(t *testing.T) {
	seen := map[string]string{}
	for group, names := range designDocs {
		for _, v := range names {
			if _, ok := views[v]; !ok {
				t.Errorf("group %s names an unknown view %s", group, v)
			}
			if other, dup := seen[v]; dup {
				t.Errorf("view %s in groups %s and %s", v, other, group)
			}
			seen[v] = group
		}
	}
	for v := range views {
		if _, ok := seen[v]; !ok {
			t.Errorf("view %s is in no design doc", v)
		}
	}
}
