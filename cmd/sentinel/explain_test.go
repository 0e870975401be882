package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sentinel-go/couch/couchtest"
)

// explainDir holds the fixture (settings.json, translations.json, docs.json)
// and one <case>.case.json per case: {"doc": ID, "info_docs": [...]}.
const explainDir = "../../testdata/explain"

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestExplainGolden loads the fixture into fresh databases on the test
// server, runs `sentinel explain` (text and --json) on each case's doc and
// compares the output with the .golden files beside it; then checks that
// nothing was written to either database.
func TestExplainGolden(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	if err := env.Client.Main.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	var settings map[string]any
	var translations map[string]map[string]string
	var docs []map[string]any
	readJSON(t, filepath.Join(explainDir, "settings.json"), &settings)
	readJSON(t, filepath.Join(explainDir, "translations.json"), &translations)
	readJSON(t, filepath.Join(explainDir, "docs.json"), &docs)
	docs = append(docs, map[string]any{"_id": "settings", "settings": settings})
	for locale, texts := range translations {
		docs = append(docs, map[string]any{"_id": "messages-" + locale, "type": "translations", "code": locale, "generic": texts})
	}
	env.Save(t, env.MainDB, docs...)
	cases, _ := filepath.Glob(filepath.Join(explainDir, "*.case.json"))
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	type explainCase struct {
		Doc      string           `json:"doc"`
		InfoDocs []map[string]any `json:"info_docs"`
	}
	for _, f := range cases {
		var c explainCase
		readJSON(t, f, &c)
		if len(c.InfoDocs) > 0 {
			env.Save(t, env.MainDB+"-sentinel", c.InfoDocs...)
		}
	}
	before := [2]any{updateSeq(t, env.Server, env.MainDB), updateSeq(t, env.Server, env.MainDB+"-sentinel")}
	for _, f := range cases {
		var c explainCase
		readJSON(t, f, &c)
		base := strings.TrimSuffix(f, ".case.json")
		for _, mode := range []string{"text", "json"} {
			t.Run(filepath.Base(base)+"."+mode, func(t *testing.T) {
				args := []string{"--couch-url", env.URL, c.Doc}
				if mode == "json" {
					args = append([]string{"--json"}, args...)
				}
				var out, errOut bytes.Buffer
				code := explainCmd(ctx, args, &out, &errOut)
				if errOut.Len() > 0 {
					t.Logf("stderr: %s", errOut.String())
				}
				got := normalizeExplain(out.String()) + fmt.Sprintf("exit %d\n", code)
				golden := base + "." + mode + ".golden"
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
	t.Run("missing doc", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := explainCmd(ctx, []string{"--couch-url", env.URL, "no-such-doc"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no doc") {
			t.Errorf("exit %d, stderr %q", code, errOut.String())
		}
	})
	after := [2]any{updateSeq(t, env.Server, env.MainDB), updateSeq(t, env.Server, env.MainDB+"-sentinel")}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("explain wrote to the databases: update_seq %v → %v", before, after)
	}
}

func updateSeq(t *testing.T, server, db string) any {
	t.Helper()
	var info map[string]any
	if err := couchtest.Request(http.MethodGet, server+"/"+db, nil, &info); err != nil {
		t.Fatal(err)
	}
	return info["update_seq"]
}

var (
	revPattern  = regexp.MustCompile(`\b[0-9]+-[0-9a-f]{32}\b`)
	uuidPattern = regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	// Shortcodes are random digits: "patient_id": "12345" and the same
	// digits in message texts.
	shortcodePattern = regexp.MustCompile(`patient_id"?: ?"([0-9]{4,})"|"path": "patient_id",\s*"op": "added",\s*"new": "([0-9]{4,})"`)
	// Created contacts' ids derive from the report's (random) revision.
	createdPattern = regexp.MustCompile(`create medic db: (\S+)|"db": "medic",\s*"id": "([^"]+)",(?:\s*"type": "[^"]*",)?\s*"action": "create"`)
)

// normalizeExplain replaces what differs from run to run (revisions, uuids,
// random shortcodes, ids derived from revisions) with stable names.
func normalizeExplain(s string) string {
	var olds []string
	for _, p := range []*regexp.Regexp{shortcodePattern, createdPattern} {
		for _, m := range p.FindAllStringSubmatch(s, -1) {
			for _, g := range m[1:] {
				if g != "" {
					olds = append(olds, g)
				}
			}
		}
	}
	sort.Slice(olds, func(i, j int) bool { return len(olds[i]) > len(olds[j]) })
	seen := map[string]bool{}
	for _, o := range olds {
		if seen[o] {
			continue
		}
		seen[o] = true
		name := "NEW-ID"
		if regexp.MustCompile(`^[0-9]+$`).MatchString(o) {
			name = "SHORTCODE"
		}
		s = strings.ReplaceAll(s, o, name)
	}
	s = revPattern.ReplaceAllString(s, "REV")
	return uuidPattern.ReplaceAllString(s, "UUID")
}

func TestExplainUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no doc id", []string{"--couch-url", "http://127.0.0.1:1/medic"}, 2},
		{"two doc ids", []string{"--couch-url", "http://127.0.0.1:1/medic", "a", "b"}, 2},
		{"bad flag", []string{"--nope", "a"}, 2},
		{"bad url", []string{"--couch-url", "ftp://x/medic", "a"}, 2},
		{"help", []string{"--help"}, 0},
	}
	t.Setenv("COUCH_URL", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := explainCmd(context.Background(), tt.args, &out, &errOut); code != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.want, errOut.String())
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := explainCmd(context.Background(), []string{"doc"}, &out, &errOut); code != 2 {
		t.Errorf("no COUCH_URL: exit %d", code)
	}
}
