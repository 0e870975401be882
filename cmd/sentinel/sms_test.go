package main

import (
	"context"
	"net"
	"net/http"
	"sentinel-go/daemon"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const offlineURL = "http://admin:pass@127.0.0.1:1/medic"

func TestSMSOffByDefault(t *testing.T) {
	d := offlineDaemon(t)
	closeSMS, err := addSMS(d, smsFlags{}, offlineURL, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	closeSMS() // nothing was started
}

func offlineDaemon(t *testing.T) *daemon.Daemon {
	t.Helper()
	d, err := daemon.New(daemon.Options{CouchURL: offlineURL, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSMSListenErrorExits1: an --sms-listen address that cannot be bound
// (malformed, or in use by another instance) stops the start, exit 1.
func TestSMSListenErrorExits1(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, addr := range []string{"127.0.0.1:notaport", taken.Addr().String()} {
		code, _, errOut := runCLI(t, "--couch-url", offlineURL, "--listen", "", "--sms-listen", addr)
		if code != 1 || !strings.Contains(errOut, "--sms-listen "+addr) {
			t.Errorf("%s: exit %d, stderr %q", addr, code, errOut)
		}
		if strings.Contains(errOut, "pass") {
			t.Errorf("stderr leaks the password: %q", errOut)
		}
	}
}

// TestSMSStartsAndStops: the API and the sender are components of the
// daemon: the API answers (401 without credentials) while the daemon runs
// (here waiting for its server), and both stop with it: Run returns only
// once they have.
func TestSMSStartsAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	d := offlineDaemon(t)
	closeSMS, err := addSMS(d, smsFlags{listen: addr, send: true}, offlineURL, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer closeSMS()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	var resp *http.Response
	for range 50 {
		if resp, err = http.Get("http://" + addr + "/api/sms"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/sms without credentials: %d, want 401", resp.StatusCode)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(6 * time.Second):
		t.Fatal("the daemon did not stop with its SMS API and sender")
	}
	if _, err := http.Get("http://" + addr + "/api/sms"); err == nil {
		t.Error("the SMS API still answers after the daemon stopped")
	}
}
