package main

import (
	"context"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
)

// runFor runs the command line for at most d, then cancels it as SIGTERM
// would: a daemon that started returns 0 then.
func runFor(t *testing.T, d time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out, errOut couchtest.LogBuffer // written by the daemon's goroutines
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	select {
	case code = <-done:
	case <-time.After(d + 10*time.Second):
		t.Fatalf("%v: still running 10 s after its context ended", args)
	}
	return code, out.String(), errOut.String()
}

// helpFlags maps each flag listed by help to the text of its entry (the
// flag line and its usage lines).
func helpFlags(help string) map[string]string {
	flags := map[string]string{}
	name := ""
	for _, line := range strings.Split(help, "\n") {
		if m := regexp.MustCompile(`^  -([a-z-]+)`).FindStringSubmatch(line); m != nil {
			name = m[1]
		} else if !strings.HasPrefix(line, "    \t") && !strings.HasPrefix(line, "\t") {
			name = ""
		}
		if name != "" {
			flags[name] += line + "\n"
		}
	}
	return flags
}

// TestHelpNamesEveryVariable: each setting's --help entry names its
// environment variable, in one scheme (SENTINEL_ + the flag in upper snake
// case) but for the CHT names COUCH_URL and SENTINEL_DB.
func TestHelpNamesEveryVariable(t *testing.T) {
	for _, cmd := range [][]string{{"--help"}, {"explain", "--help"}} {
		_, out, _ := runCLI(t, cmd...)
		flags := helpFlags(out)
		if len(flags) < 3 {
			t.Fatalf("%v: no flags found in:\n%s", cmd, out)
		}
		for name, entry := range flags {
			want := "SENTINEL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
			switch name {
			case "version", "json": // an action and a choice of one run, not settings
				if strings.Contains(entry, "[env ") {
					t.Errorf("%v: --%s names a variable: %q", cmd, name, entry)
				}
				continue
			case "couch-url":
				want = "COUCH_URL"
			case "sentinel-db":
				want = "SENTINEL_DB"
			}
			if !strings.Contains(entry, "[env "+want+"]") {
				t.Errorf("%v: --%s does not name %s: %q", cmd, name, want, entry)
			}
		}
	}
}

// TestInvalidValuesFromEnvironment: a value from the environment is
// checked as the flag's own would be (exit 2 at start, nothing contacted),
// and the message names the variable.
func TestInvalidValuesFromEnvironment(t *testing.T) {
	cases := []struct {
		env, value string
		args       []string
		want       string
	}{
		{"SENTINEL_JOB_INTERVAL", "-5s", nil, "SENTINEL_JOB_INTERVAL (--job-interval) must be a positive duration"},
		{"SENTINEL_EXPR_TIMEOUT", "0", nil, "SENTINEL_EXPR_TIMEOUT (--expr-timeout) must be a positive duration"},
		{"SENTINEL_HEALTH_STALL", "-1m", nil, "SENTINEL_HEALTH_STALL (--health-stall) must be a positive duration"},
		{"SENTINEL_JOB_INTERVAL", "often", nil, "SENTINEL_JOB_INTERVAL: invalid value for --job-interval (want a duration such as 5m or 100ms)"},
		{"SENTINEL_SMS_SEND", "maybe", nil, "SENTINEL_SMS_SEND: invalid value for --sms-send (want true or false)"},
		{"SENTINEL_LOG_LEVEL", "loud", nil, `bad SENTINEL_LOG_LEVEL (--log-level) "loud"`},
		{"SENTINEL_LOG_FORMAT", "xml", nil, `bad SENTINEL_LOG_FORMAT (--log-format) "xml"`},
		{"SENTINEL_PHONE_OWNER", "nobody", nil, "SENTINEL_PHONE_OWNER (--phone-owner)"},
		{"SENTINEL_EXPR_TIMEOUT", "0", []string{"explain", "doc"}, "SENTINEL_EXPR_TIMEOUT (--expr-timeout) must be a positive duration"},
	}
	for _, c := range cases {
		t.Run(c.env+"="+c.value, func(t *testing.T) {
			t.Setenv("COUCH_URL", offlineURL)
			t.Setenv(c.env, c.value)
			args := c.args
			if args == nil {
				args = []string{"--listen", ""}
			}
			code, out, errOut := runFor(t, 3*time.Second, args...)
			if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q (want exit 2 and %q)", code, out, errOut, c.want)
			}
		})
	}
}

// TestEnvironmentAppliesAndFlagsWin: SENTINEL_LISTEN is read (a taken
// address set there is as required as one given with --listen: exit 1
// naming it), and --listen on the command line wins over it.
func TestEnvironmentAppliesAndFlagsWin(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	t.Setenv("COUCH_URL", offlineURL)
	t.Setenv("SENTINEL_LISTEN", addr)
	t.Setenv("SENTINEL_LOG_FORMAT", "console")

	code, _, errOut := runFor(t, 3*time.Second)
	if code != 1 || !strings.Contains(errOut, addr) || !strings.Contains(errOut, "address already in use") {
		t.Errorf("SENTINEL_LISTEN=%s (taken): exit %d, stderr %q", addr, code, errOut)
	}
	if strings.HasPrefix(errOut, "{") {
		t.Errorf("SENTINEL_LOG_FORMAT=console not applied: %q", errOut)
	}

	code, _, errOut = runFor(t, 1500*time.Millisecond, "--listen", "")
	if code != 0 || strings.Contains(errOut, "address already in use") {
		t.Errorf("--listen '' over SENTINEL_LISTEN=%s: exit %d, stderr %q", addr, code, errOut)
	}
}

// TestDefaultListenIsNoPrometheusPort: the default --listen port is none of
// the Prometheus ecosystem's (9090-9099), of the exporters' allocated range
// (9100-9999), or of the allocations that continued above it.
func TestDefaultListenIsNoPrometheusPort(t *testing.T) {
	_, out, _ := runCLI(t, "--help")
	m := regexp.MustCompile(`\(default "127\.0\.0\.1:(\d+)"\)`).FindStringSubmatch(helpFlags(out)["listen"])
	if m == nil {
		t.Fatalf("no default shown for --listen in:\n%s", out)
	}
	port, _ := strconv.Atoi(m[1])
	if port >= 9090 && port <= 10200 {
		t.Errorf("default --listen port %d is in the Prometheus allocations", port)
	}
	// The same address everywhere it is written down.
	for _, f := range []string{"../../packaging/sentinel.service", "../../packaging/sentinel.env.example",
		"../../README.md", "../../Makefile", "../../scripts/demo.sh", "../../scripts/demo.py"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), ":9090") {
			t.Errorf("%s still names port 9090", f)
		}
	}
	unit, _ := os.ReadFile("../../packaging/sentinel.service")
	if !strings.Contains(string(unit), "--listen 127.0.0.1:"+m[1]) {
		t.Errorf("the unit does not listen on the default address 127.0.0.1:%s", m[1])
	}
}
