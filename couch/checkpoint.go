package couch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// CheckpointID is where the Node Sentinel keeps its place in the feed; the
// daemon uses the same document so that either can take over from the other.
const CheckpointID = "_local/transitions-seq"

// legacyMetaID is the pre-3.x place of the checkpoint.
const legacyMetaID = "_local/sentinel-meta-data"

// ErrFenced is a checkpoint write refused because a later lease holder
// (a larger fencing token) has written the checkpoint since.
var ErrFenced = errors.New("the checkpoint was written by a later lease holder")

// Checkpoint reads and writes the feed position in the sentinel db.
type Checkpoint struct {
	db  *DB
	rev string
	// Token is the writer's lease fencing token (0: no lease). It is stored
	// with the seq as `lease_token`, and a write that finds a larger token
	// stored is refused (ErrFenced): an old holder, paused past its lease,
	// cannot move its successor's checkpoint.
	Token int64
}

// NewCheckpoint returns the checkpoint kept in db (the sentinel db).
func NewCheckpoint(db *DB) *Checkpoint { return &Checkpoint{db: db} }

// Read returns the stored seq, "0" when there is none. When only a legacy
// `sentinel-meta-data` record exists (sentinel db, main db `_local`, or main
// db doc), its `processed_seq` is used, as CHT API's migration would.
func (c *Checkpoint) Read(ctx context.Context, main *DB) (string, error) {
	doc, err := c.db.Get(ctx, CheckpointID)
	if err == nil {
		c.rev, _ = doc["_rev"].(string)
		return SeqString(doc["value"]), nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("read checkpoint: %w", err)
	}
	for _, src := range []struct {
		db *DB
		id string
	}{{c.db, legacyMetaID}, {main, legacyMetaID}, {main, "sentinel-meta-data"}} {
		if src.db == nil {
			continue
		}
		legacy, err := src.db.Get(ctx, src.id)
		if err != nil {
			continue
		}
		if v, ok := legacy["processed_seq"]; ok && v != nil {
			return SeqString(v), nil
		}
	}
	return "0", nil
}

// Write stores seq (verbatim, see SeqValue). A conflict (another writer, or a
// previous daemon) is resolved by re-reading the revision once.
func (c *Checkpoint) Write(ctx context.Context, seq string) error {
	for attempt := 0; attempt < 3; attempt++ {
		doc := Doc{"_id": CheckpointID, "value": SeqValue(seq)}
		if c.Token > 0 {
			doc["lease_token"] = c.Token
		}
		if c.rev != "" {
			doc["_rev"] = c.rev
		}
		err := c.db.Put(ctx, doc)
		if err == nil {
			c.rev, _ = doc["_rev"].(string)
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return fmt.Errorf("write checkpoint: %w", err)
		}
		cur, gerr := c.db.Get(ctx, CheckpointID)
		if gerr != nil && !errors.Is(gerr, ErrNotFound) {
			return fmt.Errorf("write checkpoint: %w", gerr)
		}
		c.rev = ""
		if cur != nil {
			if stored := tokenOf(cur["lease_token"]); stored > c.Token && c.Token > 0 {
				return fmt.Errorf("write checkpoint (lease token %d, stored %d): %w", c.Token, stored, ErrFenced)
			}
			c.rev, _ = cur["_rev"].(string)
		}
	}
	return fmt.Errorf("write checkpoint: %w", ErrConflict)
}

// tokenOf reads a stored lease token (a JSON number; 0 when absent).
func tokenOf(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case int64:
		return n
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}
