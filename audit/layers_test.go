package audit_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers fails if audit (its tests included) depends, directly or not,
// on a package above it: the couch layer reports writes to it, and the
// engine and the transitions must stay unaware of it.
func TestLayers(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-test", "-f", "{{.ImportPath}}", "sentinel-go/audit").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, above := range []string{"sentinel-go/pipeline", "sentinel-go/transitions", "sentinel-go/daemon", "sentinel-go/cmd", "sentinel-go/schedule"} {
			if pkg == above || strings.HasPrefix(pkg, above+"/") {
				t.Errorf("audit depends on %s", pkg)
			}
		}
	}
}
