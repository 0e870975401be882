package main

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `make demo`'s script as a newcomer would, while another
// daemon holds the default --listen address: it prints no error of its
// own, its daemon logs no error or warning, and its table lists only what
// the daemon changed (mary's patient_id was loaded with her; her
// date_of_death is the daemon's). It needs the binary and Node (as `make
// test` provides: SENTINEL_BIN).
func TestDemo(t *testing.T) {
	bin := os.Getenv("SENTINEL_BIN")
	if bin == "" {
		t.Skip("SENTINEL_BIN is not set: run `make test`")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node: PouchDB Server cannot run")
	}
	if other, err := net.Listen("tcp", DefaultListen); err == nil {
		defer other.Close() // as another daemon on this machine would
	}
	tmp := t.TempDir()
	cmd := exec.Command("bash", "scripts/demo.sh")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "SENTINEL_BIN="+bin, "TMPDIR="+tmp, "DEMO_PORT=")
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	var log string
	if m := regexp.MustCompile(`# starting sentinel \(log: (\S+)\)`).FindStringSubmatch(out); m != nil {
		logb, _ := os.ReadFile(m[1])
		log = string(logb)
	}
	if !strings.Contains(log, "Stopped") {
		t.Errorf("no daemon log found (or the daemon did not stop): %q", log)
	}
	if err != nil {
		t.Fatalf("demo failed: %v\n%s\nlog:\n%s", err, out, log)
	}
	for _, bad := range []string{"rror", "in use", "Traceback", "did not finish"} {
		if strings.Contains(out, bad) {
			t.Errorf("the demo prints %q:\n%s", bad, out)
		}
	}
	if regexp.MustCompile(`(?m)^\S+ (ERR|WRN|FTL) `).MatchString(log) {
		t.Errorf("the demo's daemon logs errors or warnings:\n%s", log)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && rows[f[0]] == "" {
			rows[f[0]] = line // the doc's row, not the lines of what it created
		}
	}
	for doc, want := range map[string]*regexp.Regexp{
		"mary":     regexp.MustCompile(`-\s+date_of_death=\d{4}-\d\d-\d\d$`), // no patient_id: loaded with it
		"chw":      regexp.MustCompile(`\spatient_id=\d{5}$`),
		"district": regexp.MustCompile(`\splace_id=\d{5}$`),
		"reg1":     regexp.MustCompile(`contact=chw; patient_id=\d{5}; sent_by=Grace Achieng$`),
		"death1":   regexp.MustCompile(`death_reporting\s+-$`),
	} {
		if !want.MatchString(rows[doc]) {
			t.Errorf("row of %s: %q, want %s", doc, rows[doc], want)
		}
	}
}
