package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"sentinel-go/couch"
	"sentinel-go/lease"
)

// LeaseDocID is the lease document in the sentinel db (lease/).
const LeaseDocID = "sentinel-lease"

// leaseStore keeps the lease document in the sentinel db.
type leaseStore struct{ db *couch.DB }

// Get implements lease.Store.
func (s leaseStore) Get(ctx context.Context) (lease.Record, string, error) {
	doc, err := s.db.Get(ctx, LeaseDocID)
	if errors.Is(err, couch.ErrNotFound) {
		return lease.Record{}, "", lease.ErrNotFound
	}
	if err != nil {
		return lease.Record{}, "", err
	}
	r := lease.Record{}
	r.Holder, _ = doc["holder"].(string)
	r.Instance, _ = doc["instance"].(string)
	if n, ok := doc["token"].(float64); ok {
		r.Token = int64(n)
	}
	if s, ok := doc["expires"].(string); ok {
		r.Expires, _ = time.Parse(time.RFC3339Nano, s)
	}
	r.TTLSeconds, _ = doc["ttl_s"].(float64)
	r.Released, _ = doc["released"].(bool)
	rev, _ := doc["_rev"].(string)
	return r, rev, nil
}

// Put implements lease.Store.
func (s leaseStore) Put(ctx context.Context, r lease.Record, rev string) (string, error) {
	doc := couch.Doc{"_id": LeaseDocID, "holder": r.Holder, "instance": r.Instance, "token": r.Token,
		"expires": r.Expires.UTC().Format(time.RFC3339Nano), "ttl_s": r.TTLSeconds}
	if r.Released {
		doc["released"] = true
	}
	if rev != "" {
		doc["_rev"] = rev
	}
	if err := s.db.Put(ctx, doc); err != nil {
		if errors.Is(err, couch.ErrConflict) {
			return "", lease.ErrConflict
		}
		return "", err
	}
	newRev, _ := doc["_rev"].(string)
	return newRev, nil
}

// instanceID names this process in the lease document: host, pid and a
// random part (a pid is reused, and two containers may share host and pid).
func instanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// newLease is the daemon's lease when Options.Lease asks for one (nil
// otherwise). Its changes set the metrics and the log.
func (d *Daemon) newLease() (*lease.Lease, error) {
	if !d.opts.Lease {
		return nil, nil
	}
	return lease.New(lease.Options{
		Store: leaseStore{db: d.client.Sentinel}, Instance: instanceID(),
		Holder: d.opts.LeaseID, Stable: d.opts.LeaseID != "",
		TTL: d.opts.LeaseTTL, Renew: d.opts.LeaseRenew, Log: d.log,
		// A standby's loop is the lease's: it keeps systemd's watchdog fed
		// (the active instance's feed does).
		OnStep: func(held bool) {
			if !held {
				d.watchdogPing()
			}
		},
		Floor: d.checkpointToken,
		OnChange: func(held bool, token int64) {
			if held {
				d.metrics.leaseHolder.Set(1)
				d.metrics.leaseToken.Set(float64(token))
				d.sd.send("STATUS=Active (lease held)")
				return
			}
			d.metrics.leaseHolder.Set(0)
			d.sd.send("STATUS=Standby (another instance holds the lease)")
		},
	})
}

// Fence returns nil while this instance may write as the active one: always
// without a lease, and while the lease is held and its local deadline has
// not passed with one. It is checked right before each batch commit,
// checkpoint, outbound push and SMS send (see lease/ for what it guards).
func (d *Daemon) Fence() error {
	if d.lease == nil {
		return nil
	}
	return d.lease.Check()
}

// standby says whether this instance waits for the lease ("" when it is
// active or runs without a lease), and who holds it.
func (d *Daemon) standby() string {
	if d.lease == nil || d.lease.Check() == nil {
		return ""
	}
	if h := d.lease.Holder(); h != "" {
		return "standby; the lease is held by " + h
	}
	return "standby; waiting for the lease"
}

// runActive runs what only the active instance runs, until ctx ends: the
// feed, the jobs, the outbound workers and the components added with
// AddActive. Without a lease it runs once, for the daemon's whole life;
// with one, once per term of holding it, each term with a new outbound
// queue (a stopped queue does not run again, and what the old one held
// unsent belongs to changes past the checkpoint, processed again).
func (d *Daemon) runActive(ctx context.Context) {
	d.outbox = d.newOutbox()
	d.caughtUp, d.caughtUpOnce = make(chan struct{}), &sync.Once{}
	var wg sync.WaitGroup
	wg.Go(func() { d.runJobs(ctx) })
	wg.Go(func() { d.follow(ctx) })
	wg.Go(func() { d.runOutbox(ctx) })
	for _, c := range d.active {
		wg.Go(func() {
			if err := c.run(ctx); err != nil {
				d.log.Error().Str("component", c.name).Err(err).Msg("Component failed")
			}
		})
	}
	wg.Wait()
}

// warnUnleased tells an operator who runs this instance without a lease
// beside one that holds it: both then process every change.
func (d *Daemon) warnUnleased(ctx context.Context) {
	if d.lease != nil {
		return
	}
	r, _, err := leaseStore{db: d.client.Sentinel}.Get(ctx)
	// Only for a warning: the wall clocks of two hosts are compared here.
	if err != nil || r.Released || time.Now().After(r.Expires) {
		return
	}
	d.log.Warn().Str("component", "lease").Str("holder", r.Holder).
		Msg("Another instance holds the lease of this database, and this one runs without a lease (--lease): both process every change")
}

// checkpointToken is the lease token stored on the checkpoint (0 when none).
func (d *Daemon) checkpointToken(ctx context.Context) (int64, error) {
	doc, err := d.client.Sentinel.Get(ctx, couch.CheckpointID)
	if errors.Is(err, couch.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, _ := doc["lease_token"].(float64)
	return int64(n), nil
}
