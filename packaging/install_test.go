// Package packaging holds the systemd unit and the example environment file,
// the container image's Containerfile, the compose override and the
// Kubernetes patch; its tests check `make install` and that the container
// files agree.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make install DESTDIR=… puts the binary, the unit (pointing at that binary)
// and the example env file where the unit expects them, and never overwrites
// an env file that exists.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dest := t.TempDir()
	run := func() string {
		cmd := exec.Command("make", "-s", "install", "DESTDIR="+dest, "PREFIX=/opt/sg")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
		return string(out)
	}
	run()
	bin := filepath.Join(dest, "opt/sg/bin/sentinel")
	if fi, err := os.Stat(bin); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("binary not installed executable at %s: %v", bin, err)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/sentinel.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/opt/sg/bin/sentinel ") ||
		!strings.Contains(string(unit), "EnvironmentFile=/etc/sentinel-go/env") {
		t.Fatalf("unit does not start the installed binary with its env file:\n%s", unit)
	}
	envPath := filepath.Join(dest, "etc/sentinel-go/env")
	fi, err := os.Stat(envPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("env file not installed 0600: %v %v", fi, err)
	}
	// A second install keeps the administrator's env file.
	if err := os.WriteFile(envPath, []byte("COUCH_URL=mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run()
	if b, _ := os.ReadFile(envPath); string(b) != "COUCH_URL=mine\n" {
		t.Fatalf("make install overwrote the env file: %q", b)
	}
}

// One unit name everywhere: the unit is sentinel.service, so no comment or
// README line tells to systemctl a "sentinel-go" unit.
func TestOneUnitName(t *testing.T) {
	for _, f := range []string{"sentinel.service", "../README.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "systemctl") && strings.Contains(line, "sentinel-go") && !strings.Contains(line, "/etc/sentinel-go") {
				t.Errorf("%s names another unit: %s", f, line)
			}
		}
	}
}
