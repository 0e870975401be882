package schedule_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// aboveSchedule are the packages the scheduled jobs must never depend on,
// even indirectly or from a test: layers only point down (cmd → daemon →
// the engine → transitions → domain packages → couch/jsexpr), and the jobs
// stand above or beside the engine, never below it.
var aboveSchedule = []string{
	"sentinel-go/transitions",
	"sentinel-go/pipeline",
	"sentinel-go/daemon",
	"sentinel-go/cmd",
}

func forbidden(path string) bool {
	for _, p := range aboveSchedule {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// TestLayers fails if any package under schedule/ (its tests included)
// imports, directly or not, a package of aboveSchedule.
func TestLayers(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-test",
		"-f", "{{.ImportPath}}\t{{join .Imports \" \"}}", "sentinel-go/schedule/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	seen, reported := 0, map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "\t")
		pkg, _, _ = strings.Cut(pkg, " ") // "p [p.test]" is p built for its tests
		if !strings.HasPrefix(pkg, "sentinel-go/") {
			continue
		}
		seen++
		for _, imp := range strings.Fields(imports) {
			if forbidden(imp) && !reported[pkg+" "+imp] {
				reported[pkg+" "+imp] = true
				t.Errorf("%s imports %s: schedule/ must not depend on it", pkg, imp)
			}
		}
	}
	if seen == 0 {
		t.Fatal("go list found no sentinel-go package under schedule/")
	}
}
