package main

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/rs/zerolog"

	"sentinel-go/sms"
)

// smsFlags are the options of the optional SMS component.
type smsFlags struct {
	listen string // --sms-listen: address of the SMS API ("" off)
	send   bool   // --sms-send: run the aggregator sending loop
}

// startSMS starts the SMS API and the sender when the flags ask for them.
// Both stop when ctx is cancelled; wait blocks until they have. A listen
// address that cannot be bound is an error at start, not a log line later.
func startSMS(ctx context.Context, f smsFlags, couchURL string, log zerolog.Logger) (wait func(), err error) {
	if f.listen == "" && !f.send {
		return func() {}, nil
	}
	svc, err := sms.New(sms.Options{CouchURL: couchURL, Log: log})
	if err != nil {
		return nil, fmt.Errorf("SMS: %w", err)
	}
	var ln net.Listener
	if f.listen != "" {
		if ln, err = net.Listen("tcp", f.listen); err != nil {
			_ = svc.Close()
			return nil, fmt.Errorf("--sms-listen %s: %w", f.listen, err)
		}
	}
	var wg sync.WaitGroup
	if ln != nil {
		wg.Go(func() {
			if err := svc.ServeListener(ctx, ln); err != nil {
				log.Error().Err(err).Str("component", "sms").Msg("SMS API failed")
			}
		})
	}
	if f.send {
		wg.Go(func() {
			if err := svc.RunSender(ctx); err != nil {
				log.Error().Err(err).Str("component", "sms").Msg("SMS sender failed")
			}
		})
	}
	return func() {
		wg.Wait()
		_ = svc.Close()
	}, nil
}
