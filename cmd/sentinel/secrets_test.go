package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestNoCredentialInOutput plants a password in COUCH_URL and runs every
// subcommand with --help, a bad flag and bad arguments: no output may
// contain it, and usage errors exit 2 without contacting anything (the
// server named does not exist: the daemon would retry it forever).
func TestNoCredentialInOutput(t *testing.T) {
	const secret = "s3cretPassw0rd"
	t.Setenv("COUCH_URL", "http://admin:"+secret+"@127.0.0.1:1/medic")
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, 0},
		{[]string{"-h"}, 0},
		{[]string{"--no-such-flag"}, 2},
		{[]string{"chek-config", "bad.json"}, 2},
		{[]string{"stray"}, 2},
		{[]string{"--log-level", "debug", "extra", "args"}, 2},
		{[]string{"explain"}, 2},
		{[]string{"explain", "--help"}, 0},
		{[]string{"explain", "--no-such-flag", "x"}, 2},
		{[]string{"check-config"}, 2},
		{[]string{"check-config", "--help"}, 0},
		{[]string{"check-config", "--no-such-flag"}, 2},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := make(chan int, 1)
		go func() { code <- run(context.Background(), c.args, &out, &errOut) }()
		select {
		case got := <-code:
			if got != c.code {
				t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, got, c.code, errOut.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v: still running after 5 s (the daemon was started?)", c.args)
		}
		if all := out.String() + errOut.String(); strings.Contains(all, secret) {
			t.Errorf("%v: output shows the password:\n%s", c.args, all)
		}
	}
}
