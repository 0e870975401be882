package main

import (
	"context"
	"fmt"
	"net"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/daemon"
	"sentinel-go/sms"
)

// smsFlags are the options of the optional SMS component.
type smsFlags struct {
	listen string // --sms-listen: address of the SMS API ("" off)
	send   bool   // --sms-send: run the aggregator sending loop
}

// addSMS makes the SMS API and the sender components of the daemon when
// the flags ask for them: they run and stop with it, and read the settings
// of the daemon's config in force (built and swapped in at each reload).
// A listen address that cannot be bound is an error at start, not a log
// line later. closeSMS releases the SMS component's client after Run.
func addSMS(d *daemon.Daemon, f smsFlags, couchURL string, log zerolog.Logger) (closeSMS func(), err error) {
	if f.listen == "" && !f.send {
		return func() {}, nil
	}
	svc, err := sms.New(sms.Options{CouchURL: couchURL, Log: log, Fence: d.Fence, Settings: func() *config.Settings {
		if cfg := d.Config(); cfg != nil {
			return cfg.Settings
		}
		return nil
	}})
	if err != nil {
		return nil, fmt.Errorf("SMS: %w", err)
	}
	if f.listen != "" {
		ln, err := net.Listen("tcp", f.listen)
		if err != nil {
			_ = svc.Close()
			return nil, fmt.Errorf("--sms-listen %s: %w", f.listen, err)
		}
		d.Add("sms", func(ctx context.Context) error { return svc.ServeListener(ctx, ln) })
	}
	if f.send {
		// Only the active instance sends (a standby's sender waits).
		d.AddActive("sms", svc.RunSender)
	}
	return func() { _ = svc.Close() }, nil
}
