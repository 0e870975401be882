package daemon

import (
	"context"
	"time"

	"sentinel-go/audit"
	"sentinel-go/couch"
)

// auditGrace is the least time given to writing the queued audit entries
// at stop, after the feed and the jobs have stopped.
const auditGrace = 500 * time.Millisecond

// stopBudget is how long a stop may take in all (systemd and the
// conformance runner kill the daemon after 5 s).
const stopBudget = 4500 * time.Millisecond

// newAudit is the audit log of the daemon's writes to the main db: every
// write through the main db handle is reported to it.
func (d *Daemon) newAudit() *audit.Log {
	loc := d.client.Location()
	l := audit.New(d.client.DB(loc.MainDB+"-audit"), audit.Options{
		User: couch.UserOf(loc.Server), Log: d.log,
	})
	d.client.Main.SetAuditor(l)
	d.metrics.reg.MustRegister(l.Collectors()...)
	return l
}

// auditDB is the name of the audit database: CHT API's `<db>-audit`.
func (d *Daemon) auditDB() string { return d.client.Location().MainDB + "-audit" }

// checkAudit turns auditing on when `<db>-audit` exists (and --audit is not
// false), off when not; it logs the state the first time and whenever it
// changes. It runs with each settings load, so an audit db that CHT API
// creates later is found at the next reload. It never creates the db (CHT
// API owns it); a failed check keeps the current state.
func (d *Daemon) checkAudit(ctx context.Context) {
	log := d.log.With().Str("component", "audit").Str("audit_db", d.auditDB()).Logger()
	state := "disabled"
	if !d.opts.NoAudit {
		ok, err := d.client.DBExists(ctx, d.auditDB())
		if err != nil {
			log.Warn().Err(err).Msg("Cannot check whether the audit db exists; auditing stays as it was")
			return
		}
		state = "missing"
		if ok {
			state = "on"
		}
	}
	d.audit.SetEnabled(state == "on")
	d.auditState.Store(state)
	if d.auditLogged.Swap(state) == state {
		return
	}
	switch state {
	case "on":
		log.Info().Msg("Auditing is on: the daemon's writes to the main db are recorded in the audit db")
	case "missing":
		// A deployment without CHT API (or an older one) has none: a state, not a problem.
		log.Info().Msg("Auditing is off: the audit db does not exist (it is created by CHT API; checked again at each config reload)")
	default:
		log.Info().Msg("Auditing is off (--audit=false)")
	}
}

// auditStatus says whether auditing is on, for /healthz.
func (d *Daemon) auditStatus() string {
	switch s, _ := d.auditState.Load().(string); s {
	case "on":
		if !d.audit.Enabled() {
			return "audit: off (" + d.auditDB() + " went away; checked again at the next config reload)"
		}
		return "audit: on"
	case "missing":
		return "audit: off (no " + d.auditDB() + " database)"
	case "disabled":
		return "audit: off (--audit=false)"
	}
	return "audit: not checked yet"
}

// flushAudit writes the audit entries still queued once everything that
// writes has stopped, within what is left of the stop budget (stopping is
// when the stop began).
func (d *Daemon) flushAudit(stopping time.Time) {
	if d.audit.Queued() == 0 {
		return
	}
	budget := max(time.Until(stopping.Add(stopBudget)), auditGrace)
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	started := time.Now()
	n := d.audit.Queued()
	left := d.audit.Flush(ctx)
	d.log.Info().Str("component", "audit").Int("entries", n-left).Int64("took_ms", time.Since(started).Milliseconds()).Msg("Audit entries written at stop")
}
