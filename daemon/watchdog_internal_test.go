package daemon

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// The shipped unit's WatchdogSec and the daemon's backoff cannot trip: under
// that watchdog, the longest gap between two pings (the ping throttle, one
// backoff wait, one longpoll) stays under WatchdogSec.
func TestWatchdogPairsWithBackoff(t *testing.T) {
	unit, err := os.ReadFile("../packaging/sentinel.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^WatchdogSec=(\d+)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("no WatchdogSec=<seconds> in packaging/sentinel.service")
	}
	secs, _ := strconv.Atoi(string(m[1]))
	watchdogSec := time.Duration(secs) * time.Second
	t.Setenv("WATCHDOG_USEC", strconv.FormatInt(watchdogSec.Microseconds(), 10))
	d, err := New(Options{CouchURL: "http://127.0.0.1:1/medic"}) // defaults: MaxBackoff 60 s, PollTimeout 30 s
	if err != nil {
		t.Fatal(err)
	}
	throttle := d.sd.watchdog / 2
	gap := throttle + d.opts.MaxBackoff + d.opts.PollTimeout + 2*time.Second
	if gap >= watchdogSec {
		t.Fatalf("WatchdogSec=%s but a ping may come %s apart (MaxBackoff %s)", watchdogSec, gap, d.opts.MaxBackoff)
	}
	// Without a watchdog the backoff is left as configured.
	if got := pairBackoff(60*time.Second, 0); got != 60*time.Second {
		t.Fatalf("pairBackoff without watchdog = %s", got)
	}
}
