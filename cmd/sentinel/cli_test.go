package main

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
)

// runCLI runs the command line, failing the test if it does not return
// within 5 s (a daemon was started).
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut couchtest.LogBuffer // written by the daemon's goroutines
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), args, &out, &errOut) }()
	select {
	case code = <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%v: still running after 5 s (the daemon was started?)", args)
	}
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	t.Setenv("COUCH_URL", "")
	code, out, errOut := runCLI(t, "--version")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.HasPrefix(out, "sentinel-go ") || !strings.Contains(out, " revision ") ||
		!strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
		t.Errorf("--version printed %q", out)
	}
}

// TestHelpOnStdout: --help is asked for, so it goes to stdout with exit 0;
// a usage error goes to stderr with exit 2.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"check-config", "--help"}, {"explain", "-help"}} {
		code, out, errOut := runCLI(t, args...)
		flagShown := "-job-interval" // the flags are listed too
		if len(args) > 1 {
			flagShown = "-json"
		}
		if code != 0 || errOut != "" || !strings.Contains(out, "Usage") || !strings.Contains(out, flagShown) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"--no-such-flag"}, {"check-config", "--no-such-flag"}, {"explain", "--no-such-flag"}, {"check-config"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "Usage") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestInvalidValues: durations that make no sense are rejected at start,
// before anything is contacted.
func TestInvalidValues(t *testing.T) {
	t.Setenv("COUCH_URL", "http://admin:pass@127.0.0.1:1/medic")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--job-interval", "-5s"}, "--job-interval must be a positive duration"},
		{[]string{"--job-interval", "0"}, "--job-interval must be a positive duration"},
		{[]string{"--expr-timeout", "0"}, "--expr-timeout must be a positive duration"},
		{[]string{"--health-stall", "-1m"}, "--health-stall must be a positive duration"},
		{[]string{"explain", "--expr-timeout", "0", "doc"}, "--expr-timeout must be a positive duration"},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, c.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q (want %q)", c.args, code, out, errOut, c.want)
		}
	}
}

// TestListenInUse: a second instance whose --listen port is taken exits 1
// at once with a message naming the address, before contacting CouchDB.
func TestListenInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	code, _, errOut := runCLI(t, "--couch-url", "http://admin:pass@127.0.0.1:1/medic", "--log-format", "console", "--listen", addr)
	if code != 1 || !strings.Contains(errOut, addr) || !strings.Contains(errOut, "address already in use") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
