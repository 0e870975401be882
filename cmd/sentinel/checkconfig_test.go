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

// TestJSONSyntaxErrorPosition: a JSON syntax error is an invalid config
// (exit 1) reported with its line and column (in characters, 1-based).
func TestJSONSyntaxErrorPosition(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"trailing comma", "{\n  \"transitions\": {\n    \"a\": true,\n  }\n}\n", "line 4, column 3: invalid character '}'"},
		{"first line", "{\"a\" 1}", "line 1, column 6: invalid character '1'"},
		{"after multibyte", "{\n \"é\": tru }", "line 2, column 10: invalid character ' ' in literal true"},
		{"truncated", "{\n  \"a\": [1,\n  2\n\n", "line 3, column 4: unexpected end of JSON input"},
		{"empty", "", "line 1, column 1: unexpected end of JSON input"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "settings.json")
			if err := os.WriteFile(f, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := checkConfig([]string{f}, &out, &errOut)
			want := "error: JSON syntax error at " + c.want
			if code != 1 || !strings.HasPrefix(out.String(), want) || !strings.HasSuffix(out.String(), "\n1 errors, 0 warnings\n") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out.String(), errOut.String(), want)
			}
		})
	}
}
