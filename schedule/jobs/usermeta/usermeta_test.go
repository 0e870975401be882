package usermeta

import "testing"

func TestIsMetaDB(t *testing.T) {
	for name, want := range map[string]bool{
		"medic-user-chw1-meta":      true,
		"medic-user-a-b-meta":       true,
		"medic-users-meta":          false,
		"medic-user-chw1":           false,
		"medic-user--meta":          false,
		"other-medic-user-chw-meta": false,
		"medic-user-chw-meta-old":   false,
	} {
		if got := isMetaDB("medic", name); got != want {
			t.Errorf("isMetaDB(%q) = %v, want %v", name, got, want)
		}
	}
}
