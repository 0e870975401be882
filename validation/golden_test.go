package validation

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

type goldenFile struct {
	Now   float64      `json:"now"`
	Cases []goldenCase `json:"cases"`
}

type goldenCase struct {
	Source      string           `json:"source"`
	Scenario    string           `json:"scenario"`
	Validations any              `json:"validations"`
	Doc         map[string]any   `json:"doc"`
	Reports     []map[string]any `json:"reports"`
	Failed      []int            `json:"failed"`
}

// TestGolden runs every rule/outcome pair of the conformance scenarios.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	n := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var g goldenFile
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, c := range g.Cases {
			n++
			t.Run(c.Source+"/"+c.Scenario, func(t *testing.T) {
				cfg, problems := ParseConfig(c.Validations)
				for _, p := range problems {
					if !p.Warning {
						t.Fatalf("config error: %v", p)
					}
				}
				env := Env{
					Store:              &fakeStore{reports: c.Reports},
					Now:                time.UnixMilli(int64(g.Now)).UTC(),
					Location:           time.UTC,
					DefaultCountryCode: "254",
				}
				failures, err := Validate(context.Background(), cfg, c.Doc, env)
				if err != nil {
					t.Fatal(err)
				}
				var want, got []string
				for _, i := range c.Failed {
					want = append(want, cfg.Entries[i].Property+" "+cfg.Entries[i].Rule)
				}
				for _, f := range failures {
					got = append(got, f.Property+" "+f.Entry.Rule)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("failed = %q; want %q", got, want)
				}
			})
		}
	}
	if n < 25 {
		t.Errorf("only %d golden cases", n)
	}
}
