package daemon

import (
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's notify protocol (sd_notify): datagrams such as
// "READY=1" to the unix socket named by NOTIFY_SOCKET. Without that
// variable (not started by systemd with Type=notify) it does nothing.
type notifier struct {
	addr *net.UnixAddr
	// watchdog is how often WATCHDOG=1 must be sent (half of WatchdogSec),
	// zero when systemd does not watch the daemon.
	watchdog time.Duration
}

func newNotifier() *notifier {
	n := &notifier{}
	if path := os.Getenv("NOTIFY_SOCKET"); path != "" {
		if path[0] == '@' { // abstract socket
			path = "\x00" + path[1:]
		}
		n.addr = &net.UnixAddr{Name: path, Net: "unixgram"}
	}
	if usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64); err == nil && usec > 0 {
		n.watchdog = time.Duration(usec) * time.Microsecond / 2
	}
	return n
}

// send delivers one state line; failures only matter to systemd, which
// then restarts or times out the unit, so they are not errors here.
func (n *notifier) send(state string) {
	if n == nil || n.addr == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
