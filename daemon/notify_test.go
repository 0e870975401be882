package daemon_test

import (
	"fmt"
	"net"
	"net/url"
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
	t.Logf("notify sequence: %q", got)
}

// notifyLog reads what the daemon sends to NOTIFY_SOCKET, with the time
// each message came.
type notifyLog struct {
	mu   sync.Mutex
	msgs []string
	at   []time.Time
}

func listenNotify(t *testing.T) *notifyLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	l := &notifyLog{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.msgs, l.at = append(l.msgs, string(buf[:n])), append(l.at, time.Now())
			l.mu.Unlock()
		}
	}()
	t.Setenv("NOTIFY_SOCKET", path)
	return l
}

// longestGap is the longest time in [from, to] without a message starting
// with prefix.
func (l *notifyLog) longestGap(prefix string, from, to time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, gap := from, time.Duration(0)
	for i, m := range l.msgs {
		if !strings.HasPrefix(m, prefix) || l.at[i].Before(from) || l.at[i].After(to) {
			continue
		}
		gap = max(gap, l.at[i].Sub(last))
		last = l.at[i]
	}
	return max(gap, to.Sub(last))
}

// TestWatchdogDuringOutage: while CouchDB is unreachable the daemon waits,
// alive: WATCHDOG=1 keeps coming (a 2-minute outage left a 210 s gap, and
// systemd would have killed a daemon that was right to wait), and STATUS=
// says what it waits for.
func TestWatchdogDuringOutage(t *testing.T) {
	env := couchtest.NewPrivate(t)
	u, _ := url.Parse(env.Server)
	proxy := newCutProxy(t, u.Host)
	notes := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "1000000") // pings at least every 0.5 s
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}))
	via := *env
	via.URL = fmt.Sprintf("http://admin:pass@%s/%s", proxy.addr, env.MainDB)
	r := start(t, &via)
	r.waitFor(t, "the feed followed", func() bool { return strings.Contains(r.logs.String(), "Following changes") })
	proxy.down()
	from := time.Now()
	time.Sleep(4 * time.Second)
	to := time.Now()
	proxy.up(t)
	if gap := notes.longestGap("WATCHDOG=1", from, to); gap > time.Second {
		t.Errorf("no WATCHDOG=1 for %s during the outage (WatchdogSec=1s)", gap.Round(10*time.Millisecond))
	}
	notes.mu.Lock()
	status := strings.Join(notes.msgs, "\n")
	notes.mu.Unlock()
	if !strings.Contains(status, "STATUS=Waiting for CouchDB") {
		t.Errorf("STATUS= never said the daemon waits for CouchDB: %s", status)
	}
}
