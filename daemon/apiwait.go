package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// apiLogEvery is how often the wait for CHT API is logged: often enough to
// show in `docker logs` that the daemon is alive and what it waits for,
// seldom enough not to flood it during API's migrations (minutes on a big
// instance).
const apiLogEvery = 10 * time.Second

// waitForAPI polls CHT API's /setup/poll until it answers 2xx, when an API
// is configured (feed.md §1: API's migrations rewrite docs at start, and
// the reference never follows the feed before them). The wait is logged,
// reported on /healthz, /readyz and STATUS=, keeps systemd's watchdog fed,
// and ends at once with ctx.
func (d *Daemon) waitForAPI(ctx context.Context) error {
	base := d.opts.APIURL
	if base == "" {
		return nil
	}
	url := base + "/setup/poll"
	log := d.log.With().Str("component", "api").Str("api", base).Logger()
	d.health.waitingFor(base)
	defer d.health.waitingFor("")
	d.sd.send("STATUS=Waiting for CHT API at " + base)
	client := &http.Client{Timeout: 5 * time.Second}
	began := time.Now()
	var lastLog time.Time
	for {
		cause := pollAPI(ctx, client, url)
		if cause == "" {
			log.Info().Int64("waited_ms", time.Since(began).Milliseconds()).Msg("CHT API is ready")
			d.sd.send("STATUS=Starting")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(lastLog) >= apiLogEvery {
			lastLog = time.Now()
			log.Info().Str("cause", cause).Int64("waited_ms", time.Since(began).Milliseconds()).
				Msg("Waiting for CHT API to be ready (its /setup/poll does not answer yet)")
		}
		d.watchdogPing()
		if !sleep(ctx, min(d.opts.APIPollInterval, d.watchdogWait())) {
			return ctx.Err()
		}
	}
}

// watchdogWait is the longest the daemon may wait between two watchdog
// pings (an hour when systemd does not watch it).
func (d *Daemon) watchdogWait() time.Duration {
	if d.sd.watchdog > 0 {
		return d.sd.watchdog / 2
	}
	return time.Hour
}

// pollAPI asks url once; "" when API answered 2xx, else why not. The cause
// names the status or the network error, never a body (an API in trouble
// may answer a page of HTML).
func pollAPI(ctx context.Context, client *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	if resp.StatusCode/100 != 2 {
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return ""
}
