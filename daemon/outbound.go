package daemon

import (
	"context"
	"time"

	"sentinel-go/couch"
	"sentinel-go/internal/graceful"
	"sentinel-go/jsexpr"
	"sentinel-go/outbound"
)

// newOutbox is the outbound queue: mark_for_outbound hands it the pushes,
// its workers send them (Run), the feed makes them durable before each
// checkpoint (syncOutbound) and the outbound job asks it to retry tasks.
func (d *Daemon) newOutbox() *outbound.Queue {
	return &outbound.Queue{
		Sentinel: d.client.Sentinel, Main: d.client.Main,
		Log:      d.log.With().Str("component", "outbound").Logger(),
		JS:       jsexpr.NewSandbox(jsexpr.Options{Timeout: d.opts.ExprTimeout}),
		Location: d.opts.Location, Secrets: d.secrets, AwaitServer: d.awaitServer, Fence: d.Fence,
		Config: func() (*outbound.Config, map[string]any) {
			cfg := d.cfg.Load()
			if cfg == nil || !cfg.Valid() {
				return nil, nil
			}
			raw, present := cfg.Settings.Raw["outbound"]
			m, isMap := raw.(map[string]any)
			if present && raw != nil && !isMap {
				return nil, nil // a broken config must not empty the queues
			}
			c, _ := outbound.Parse(raw, cfg.Settings.OutboundOrder)
			return c, m
		},
	}
}

// syncOutbound makes the pushes queued by the changes processed so far
// durable (their task docs) before the checkpoint passes those changes.
func (d *Daemon) syncOutbound(ctx context.Context) error {
	pctx, done := graceful.Context(ctx, couch.DefaultRequestTimeout, stopGrace)
	started := time.Now()
	err := d.outbox.Sync(pctx)
	done()
	d.log.Debug().Str("component", "outbound").Int64("took_ms", time.Since(started).Milliseconds()).AnErr("error", err).Msg("Outbound pushes made durable")
	if err != nil {
		return d.retry(ctx, "queue the outbound pushes", d.outbox.Sync)
	}
	return nil
}

// runOutbox runs the outbound workers until ctx ends.
func (d *Daemon) runOutbox(ctx context.Context) {
	started := time.Now()
	d.outbox.Run(ctx)
	d.log.Debug().Str("component", "outbound").Dur("ran_ms", time.Since(started)).Msg("Outbound workers stopped")
}
