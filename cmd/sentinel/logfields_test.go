package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLogDurationsNameTheirUnit: zerolog writes a Dur field as a bare
// number of milliseconds ("retry_in":500), so every duration field of the
// daemon's logs says so in its name (retry_in_ms).
func TestLogDurationsNameTheirUnit(t *testing.T) {
	dur := regexp.MustCompile(`\.Dur\("([^"]+)"`)
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// remove it from this list once that is merged.
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range dur.FindAllStringSubmatch(string(src), -1) {
			if !strings.HasSuffix(m[1], "_ms") {
				t.Errorf("%s: duration log field %q does not name its unit (%s_ms)", path, m[1], m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
