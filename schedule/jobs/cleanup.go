package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sentinel-go/couch"
	"sentinel-go/infodoc"
)

// BackgroundCleanup removes what the daemon and CHT keep about deleted docs
// (schedules.md §8): it follows the main db's `_changes` from its own
// checkpoint `_local/background-seq` in the sentinel db, and for each
// deleted doc deletes `<id>-info` (sentinel db, and the legacy copy in the
// main db) and the `read:report:<id>` / `read:message:<id>` markers of every
// `<db>-user-*` database.
type BackgroundCleanup struct {
	// BatchSize is the number of changes per batch (default 1000).
	BatchSize int
}

// BackgroundSeqID is the cleanup's checkpoint in the sentinel db.
const BackgroundSeqID = "_local/background-seq"

// Name implements Job.
func (BackgroundCleanup) Name() string { return "background_cleanup" }

// Run implements Job.
func (j BackgroundCleanup) Run(ctx context.Context, env *Env) error {
	size := j.BatchSize
	if size <= 0 {
		size = 1000
	}
	since := "0"
	cpDoc, err := env.Sentinel.Get(ctx, BackgroundSeqID)
	switch {
	case err == nil:
		since = couch.SeqString(cpDoc["value"])
	case !errors.Is(err, couch.ErrNotFound):
		return fmt.Errorf("read %s: %w", BackgroundSeqID, err)
	}
	var userDBs []string
	userDBsRead := false
	for ctx.Err() == nil {
		b, err := env.Main.Changes(ctx, couch.FeedOptions{Since: since, Limit: size, Normal: true})
		if err != nil {
			return fmt.Errorf("background cleanup: %w", err)
		}
		for _, ch := range b.Changes {
			if !ch.Deleted || infodoc.IsID(ch.ID) || strings.HasPrefix(ch.ID, "_design/") {
				continue
			}
			if !userDBsRead {
				userDBs = j.userDBs(ctx, env)
				userDBsRead = true
			}
			if err := j.cleanup(ctx, env, ch.ID, userDBs); err != nil {
				return err
			}
			env.Count(j.Name(), "cleared", 1)
		}
		if len(b.Changes) == 0 || b.LastSeq == "" || b.LastSeq == since {
			return nil
		}
		since = b.LastSeq
		doc := couch.Doc{"_id": BackgroundSeqID, "value": couch.SeqValue(since)}
		if cpDoc != nil {
			doc["_rev"] = cpDoc["_rev"]
		}
		if err := env.Sentinel.Put(ctx, doc); err != nil {
			return fmt.Errorf("write %s: %w", BackgroundSeqID, err)
		}
		cpDoc = doc
		if len(b.Changes) < size {
			return nil
		}
	}
	return ctx.Err()
}

// userDBs lists the `<db>-user-*` databases; without the right to list
// databases there are none to clean (logged once per run).
func (j BackgroundCleanup) userDBs(ctx context.Context, env *Env) []string {
	if env.Client == nil {
		return nil
	}
	all, err := env.Client.AllDBs(ctx)
	if err != nil {
		env.Log.Warn().Str("job", j.Name()).Err(err).Msg("Cannot list databases: read markers of users are not cleaned")
		return nil
	}
	prefix := env.Main.Name() + "-user-"
	var out []string
	for _, db := range all {
		if strings.HasPrefix(db, prefix) && !strings.HasSuffix(db, "-meta") {
			out = append(out, db)
		}
	}
	return out
}

func (j BackgroundCleanup) cleanup(ctx context.Context, env *Env, id string, userDBs []string) error {
	targets := []struct {
		db *couch.DB
		id string
	}{{env.Sentinel, infodoc.ID(id)}, {env.Main, infodoc.ID(id)}}
	for _, u := range userDBs {
		db := env.Client.DB(u)
		targets = append(targets, struct {
			db *couch.DB
			id string
		}{db, "read:report:" + id}, struct {
			db *couch.DB
			id string
		}{db, "read:message:" + id})
	}
	for _, t := range targets {
		if err := deleteIfExists(ctx, t.db, t.id); err != nil {
			return fmt.Errorf("background cleanup of %s: %w", id, err)
		}
	}
	return nil
}

// deleteIfExists deletes a doc when it exists; a doc deleted meanwhile, or
// changed (409: retried at the next run through the same change), is fine.
func deleteIfExists(ctx context.Context, db *couch.DB, id string) error {
	doc, err := db.Get(ctx, id)
	if errors.Is(err, couch.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rev, _ := doc["_rev"].(string)
	if err := db.Delete(ctx, id, rev); err != nil && !errors.Is(err, couch.ErrNotFound) && !errors.Is(err, couch.ErrConflict) {
		return err
	}
	return nil
}
