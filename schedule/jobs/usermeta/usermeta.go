// Package usermeta is the user-meta replication job (jobs.md §3): every day
// at 02:00 local time it copies the telemetry, feedback and interaction docs
// that offline users' devices upload to their `<db>-user-<name>-meta`
// databases into `<db>-users-meta`, then purges the copies from the sources.
package usermeta

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"sentinel-go/couch"
	"sentinel-go/schedule/jobs"
)

// prefixes are the ids copied.
var prefixes = []string{"telemetry-", "feedback-", "interaction-"}

// pageSize is the number of ids read, copied or checked per request.
const pageSize = 100

// purgeLogID records, in each source, how far its `_changes` were purged.
const purgeLogID = "_local/purge_log"

// Replication is the job; a tick only arms its 02:00 timer.
type Replication struct {
	timer jobs.Timer
}

// New returns the job.
func New() *Replication { return &Replication{} }

// Name implements jobs.Job.
func (*Replication) Name() string { return "user_meta_replication" }

// Run implements jobs.Job: it arms the timer for the next 02:00.
func (r *Replication) Run(ctx context.Context, env *jobs.Env) error {
	if env.Client == nil {
		return nil
	}
	now := env.Wall()
	loc := env.Location
	if loc == nil {
		loc = time.Local
	}
	l := now.In(loc)
	at := time.Date(l.Year(), l.Month(), l.Day(), 2, 0, 0, 0, loc)
	if at.Before(now.Truncate(time.Second)) {
		at = time.Date(l.Year(), l.Month(), l.Day()+1, 2, 0, 0, 0, loc)
	}
	work := env.Detached(r.Name())
	r.timer.Arm(ctx, at, now, func(ctx context.Context) {
		if err := Replicate(ctx, work.Client, work); err != nil {
			work.Log.Error().Err(err).Msg("User-meta replication failed")
		}
	})
	return nil
}

// Wait returns when no replication is running (tests).
func (r *Replication) Wait() { r.timer.Wait() }

// Server is what the replication needs of the server.
type Server interface {
	Location() couch.Location
	AllDBs(ctx context.Context) ([]string, error)
	EnsureDB(ctx context.Context, name string) error
	DB(name string) *couch.DB
}

var _ Server = (*couch.Client)(nil)

// Replicate copies and purges every user meta db, one after the other; the
// first error stops the remaining ones (they wait for the next day).
func Replicate(ctx context.Context, srv Server, env *jobs.Env) error {
	main := srv.Location().MainDB
	target := main + "-users-meta"
	all, err := srv.AllDBs(ctx)
	if err != nil {
		return fmt.Errorf("list databases: %w", err)
	}
	var sources []string
	for _, name := range all {
		if isMetaDB(main, name) {
			sources = append(sources, name)
		}
	}
	if len(sources) == 0 {
		return nil
	}
	if err := srv.EnsureDB(ctx, target); err != nil {
		return err
	}
	tdb := srv.DB(target)
	for _, name := range sources {
		env.Log.Info().Msgf("Replicating docs from %q to %q", name, target)
		if err := replicateOne(ctx, srv.DB(name), tdb); err != nil {
			return fmt.Errorf("replicate %s: %w", name, err)
		}
	}
	return nil
}

// isMetaDB: the whole name is `<main>-user-<anything>-meta`.
func isMetaDB(main, name string) bool {
	rest, ok := strings.CutPrefix(name, main+"-user-")
	return ok && len(rest) > len("-meta") && strings.HasSuffix(rest, "-meta")
}

func replicateOne(ctx context.Context, src, target *couch.DB) error {
	seq, err := src.CurrentSeq(ctx)
	if err != nil {
		return err
	}
	for _, p := range prefixes {
		if err := copyPrefix(ctx, src, target, p); err != nil {
			return err
		}
	}
	return purgeCopies(ctx, src, target, seq)
}

// copyPrefix copies the live docs whose id starts with prefix, with their
// revision history, skipping those the target has at that revision.
func copyPrefix(ctx context.Context, src, target *couch.DB, prefix string) error {
	start, skip := prefix, false
	for {
		rows, err := src.IDRange(ctx, start, prefix+"\ufff0", pageSize, skip)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(rows))
		revs := map[string]string{}
		for _, r := range rows {
			if rev, _ := mapOf(r.Value)["rev"].(string); rev != "" {
				ids = append(ids, r.ID)
				revs[r.ID] = rev
			}
		}
		have, err := target.Revs(ctx, ids)
		if err != nil {
			return err
		}
		var docs []couch.Doc
		for _, id := range ids {
			if have[id] == revs[id] {
				continue
			}
			d, err := src.GetFull(ctx, id)
			if errors.Is(err, couch.ErrNotFound) {
				continue // deleted since the listing
			}
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
		if err := target.PutReplicated(ctx, docs); err != nil {
			return err
		}
		if len(rows) < pageSize {
			return nil
		}
		start, skip = rows[len(rows)-1].ID, true
	}
}

// purgeCopies purges from src the revisions of the copied docs that the
// target holds, reading src's `_changes` from its purge log, then records
// seq (src's update_seq before the copy) as the new purge log.
func purgeCopies(ctx context.Context, src, target *couch.DB, seq string) error {
	logDoc, err := src.Get(ctx, purgeLogID)
	since := "0"
	switch {
	case err == nil:
		if s := couch.SeqString(logDoc["seq"]); s != "" {
			since = s
		}
	case errors.Is(err, couch.ErrNotFound):
		logDoc = couch.Doc{"_id": purgeLogID}
	default:
		return err
	}
	for {
		b, err := src.Changes(ctx, couch.FeedOptions{Since: since, Limit: pageSize, Normal: true})
		if err != nil {
			return err
		}
		var ids []string
		revOf := map[string]string{}
		for _, c := range b.Changes {
			if c.Deleted || !copied(c.ID) {
				continue
			}
			ids = append(ids, c.ID)
			revOf[c.ID] = c.Rev
		}
		held, err := target.Revs(ctx, ids)
		if err != nil {
			return err
		}
		purge := map[string][]string{}
		for _, id := range ids {
			if _, ok := held[id]; ok {
				purge[id] = []string{revOf[id]}
			}
		}
		if err := src.Purge(ctx, purge); err != nil {
			return err
		}
		if len(b.Changes) < pageSize || b.LastSeq == "" || b.LastSeq == since {
			break
		}
		since = b.LastSeq
	}
	logDoc["seq"] = couch.SeqValue(seq)
	return src.Put(ctx, logDoc)
}

func copied(id string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
