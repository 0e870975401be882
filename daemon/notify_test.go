package daemon_test

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
)

// TestSystemdNotify runs the daemon with NOTIFY_SOCKET on a socket the test
// reads: it must say READY=1 once a valid config is loaded, WATCHDOG=1 while
// the feed loop lives, and STOPPING=1 when it stops.
func TestSystemdNotify(t *testing.T) {
	env := couchtest.New(t)
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, string(buf[:n]))
			mu.Unlock()
		}
	}()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "200000") // 0.2 s: pings every 0.1 s at most
	env.Save(t, env.MainDB, settings(map[string]any{}))
	r := start(t, env)
	seen := func(prefix string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range got {
			if strings.HasPrefix(m, prefix) {
				return true
			}
		}
		return false
	}
	r.waitFor(t, "READY=1", func() bool { return seen("READY=1") })
	env.Save(t, env.MainDB, map[string]any{"_id": "x"})
	r.waitFor(t, "WATCHDOG=1", func() bool { return seen("WATCHDOG=1") })
	// While it runs, only READY, STATUS and WATCHDOG: systemd takes a
	// STOPPING=1 from a running service for the start of a stop.
	time.Sleep(700 * time.Millisecond)
	mu.Lock()
	for _, m := range got {
		for _, line := range strings.Split(strings.TrimSpace(m), "\n") {
			if !strings.HasPrefix(line, "READY=") && !strings.HasPrefix(line, "STATUS=") && !strings.HasPrefix(line, "WATCHDOG=") {
				t.Errorf("sent %q while running (all: %q)", line, got)
			}
		}
	}
	running := len(got)
	mu.Unlock()
	r.stop(t)
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	stopping := -1
	for i, m := range got {
		if strings.HasPrefix(m, "STOPPING=1") {
			if stopping >= 0 {
				t.Errorf("STOPPING=1 sent twice: %q", got)
			}
			stopping = i
		}
	}
	if stopping < running {
		t.Errorf("STOPPING=1 at %d, want it only once the stop began (after message %d): %q", stopping, running, got)
	}
}
