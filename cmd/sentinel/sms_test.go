package main

import (
	"bytes"
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

func TestSMSListenErrorExits2(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"--couch-url", offlineURL, "--listen", "", "--sms-listen", "127.0.0.1:notaport"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--sms-listen") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	if strings.Contains(errOut.String(), "pass") {
		t.Errorf("stderr leaks the password: %q", errOut.String())
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
