package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const offlineURL = "http://admin:pass@127.0.0.1:1/medic"

func TestSMSOffByDefault(t *testing.T) {
	wait, err := startSMS(context.Background(), smsFlags{}, offlineURL, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	wait() // returns at once: nothing was started
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

// TestSMSStartsAndStops: the API answers (401 without credentials) and the
// API and the sender stop when the context is cancelled.
func TestSMSStartsAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait, err := startSMS(ctx, smsFlags{listen: addr, send: true}, offlineURL, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/api/sms")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/sms without credentials: %d, want 401", resp.StatusCode)
	}
	cancel()
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(6 * time.Second):
		t.Fatal("SMS API and sender did not stop")
	}
	if _, err := http.Get("http://" + addr + "/api/sms"); err == nil {
		t.Error("the SMS API still answers after the stop")
	}
}
