package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestCheckConfigGolden runs check-config on each testdata/check-config/*.json
// and compares the output (and exit code) with the .golden file beside it.
func TestCheckConfigGolden(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/check-config/*.json")
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".translations.json") {
			continue // the translations of a case, not a case
		}
		// A case's translations: <case>.translations/ (messages-*.json docs)
		// or <case>.translations.json ({locale: {key: text}}).
		var trArgs []string
		for _, tr := range []string{strings.TrimSuffix(f, ".json") + ".translations", strings.TrimSuffix(f, ".json") + ".translations.json"} {
			if _, err := os.Stat(tr); err == nil {
				trArgs = []string{"--translations", tr}
			}
		}
		for _, mode := range []string{"text", "json"} {
			name := strings.TrimSuffix(filepath.Base(f), ".json") + "." + mode
			t.Run(name, func(t *testing.T) {
				args := append(append([]string{}, trArgs...), f)
				if mode == "json" {
					args = append([]string{"--json"}, args...)
				}
				var out, errOut bytes.Buffer
				code := checkConfig(args, &out, &errOut)
				got := out.String() + "exit " + string(rune('0'+code)) + "\n"
				golden := strings.TrimSuffix(f, ".json") + "." + mode + ".golden"
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if got != string(want) {
					t.Errorf("got:\n%s\nwant:\n%s", got, want)
				}
			})
		}
	}
}

func TestCheckConfigUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := checkConfig(nil, &out, &errOut); code != 2 {
		t.Errorf("no file: exit %d", code)
	}
	if code := checkConfig([]string{"/does/not/exist.json"}, &out, &errOut); code != 2 {
		t.Errorf("missing file: exit %d", code)
	}
}
