package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEDocumentsTheCommandLine: the README's table lists every flag of
// --help with its environment variable, and says what a newcomer needs:
// where the tests' conformance scenarios come from, how long `make test`
// takes, and how to try the daemon by hand on a local server.
func TestREADMEDocumentsTheCommandLine(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	_, help, _ := runCLI(t, "--help")
	for name, entry := range helpFlags(help) {
		env := "|"
		if m := regexp.MustCompile(`\[env ([A-Z_]+)\]`).FindStringSubmatch(entry); m != nil {
			env = "| `" + m[1] + "` |"
		}
		if row := "| `--" + name + "` " + env; !strings.Contains(readme, row) {
			t.Errorf("the README has no row %q", row)
		}
	}
	for _, want := range []string{
		"`../shared/conformance/`",            // the scenarios the tests run
		"`make test` takes about",             // and how long
		"scripts/pouchdb.sh start",            // a local server to try it on
		`curl -X PUT "$URL/medic/settings"`,   // a settings doc
		"COUCH_URL=$URL/medic ./bin/sentinel", // the daemon on it
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("the README does not say %q", want)
		}
	}
}
