package couch

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	kivik "github.com/go-kivik/kivik/v4"
)

// Change is one row of the `_changes` feed.
type Change struct {
	// Seq is the change's sequence, opaque: never parsed nor compared.
	Seq     string
	ID      string
	Rev     string
	Deleted bool
	// Doc is the winning revision when the batch was read with docs.
	Doc Doc
}

// Batch is one longpoll answer of the `_changes` feed.
type Batch struct {
	Changes []Change
	LastSeq string
	// Pending is the number of changes left after this batch (the backlog);
	// -1 when the server does not say.
	Pending int64
}

// FeedOptions shape one longpoll request.
type FeedOptions struct {
	Since       string
	Limit       int
	IncludeDocs bool
	// Timeout is how long the server may hold the request when there is no
	// change (CouchDB's `timeout`). No heartbeat is asked for: CouchDB lets a
	// heartbeat override the timeout and hold a longpoll open forever.
	Timeout time.Duration
	// DocIDs restricts the feed to these ids (filter=_doc_ids).
	DocIDs []string
	// Normal asks for feed=normal: the answer comes at once, even when empty.
	Normal bool
}

// Changes reads one batch of the feed with `feed=longpoll`: it returns as soon
// as there is at least one change after Since, or after Timeout with none.
// kivik's `feed=continuous` panics when a stream ends, so the daemon only ever
// reads bounded longpoll batches and loops itself.
func (d *DB) Changes(ctx context.Context, o FeedOptions) (Batch, error) {
	params := map[string]any{
		"feed":  "longpoll",
		"since": sinceParam(o.Since),
	}
	if o.Normal {
		params["feed"] = "normal"
	}
	if o.Limit > 0 {
		params["limit"] = o.Limit
	}
	if o.IncludeDocs {
		params["include_docs"] = true
	}
	if o.Timeout > 0 {
		params["timeout"] = o.Timeout.Milliseconds()
	}
	if len(o.DocIDs) > 0 {
		params["filter"] = "_doc_ids"
		params["doc_ids"] = o.DocIDs
	}
	// PouchDB Server ignores `timeout` on an idle longpoll and holds it until
	// the next change: bound the request on our side too, and read a request
	// cut by that bound as an empty batch.
	reqCtx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, o.Timeout+2*time.Second)
		defer cancel()
	}
	ch := d.k.Changes(reqCtx, kivik.Params(params))
	defer ch.Close()
	var b Batch
	for ch.Next() {
		c := Change{Seq: ch.Seq(), ID: ch.ID(), Deleted: ch.Deleted()}
		if revs := ch.Changes(); len(revs) > 0 {
			c.Rev = revs[0]
		}
		if o.IncludeDocs {
			var raw json.RawMessage
			if err := ch.ScanDoc(&raw); err == nil && len(raw) > 0 && string(raw) != "null" {
				var doc Doc
				if json.Unmarshal(raw, &doc) == nil {
					c.Doc = doc
					if rev, _ := doc["_rev"].(string); rev != "" {
						c.Rev = rev
					}
				}
			}
		}
		if c.ID == "" {
			continue // the stream's closing line, never a change
		}
		b.Changes = append(b.Changes, c)
	}
	if err := ch.Err(); err != nil {
		if ctx.Err() == nil && reqCtx.Err() != nil && len(b.Changes) == 0 {
			return Batch{LastSeq: o.Since, Pending: 0}, nil
		}
		return Batch{}, d.wrap("read changes", err)
	}
	b.Pending = -1
	if meta, err := ch.Metadata(); err == nil && meta != nil {
		b.LastSeq = meta.LastSeq
		b.Pending = meta.Pending
	}
	if b.LastSeq == "" && len(b.Changes) > 0 {
		b.LastSeq = b.Changes[len(b.Changes)-1].Seq
	}
	return b, nil
}

// CurrentSeq returns the db's update sequence, to start a live watch "from now".
func (d *DB) CurrentSeq(ctx context.Context) (string, error) {
	b, err := d.Changes(ctx, FeedOptions{Since: "now", Limit: 1, Normal: true})
	if err != nil {
		return "", err
	}
	if b.LastSeq == "" {
		return "now", nil
	}
	return b.LastSeq, nil
}

// sinceParam sends a numeric seq (PouchDB, CouchDB 1.x) as a number and an
// opaque one (CouchDB 2/3) verbatim.
func sinceParam(seq string) any {
	if seq == "" {
		return "0"
	}
	return seq
}

// SeqValue is the JSON value to store for seq: servers that number their
// changes (PouchDB, CouchDB 1.x) get the number back, CouchDB 2/3's opaque
// strings are kept verbatim. kivik hands every seq over as a string; only
// all-digit ones were numbers on the wire (CouchDB 2/3 seqs always hold a "-").
func SeqValue(seq string) any {
	if seq != "" && len(seq) < 16 && strings.Trim(seq, "0123456789") == "" {
		if n, err := strconv.ParseInt(seq, 10, 64); err == nil {
			return float64(n)
		}
	}
	return seq
}

// SeqString turns a stored checkpoint value back into the string form used
// as `since`.
func SeqString(v any) string {
	switch x := v.(type) {
	case nil:
		return "0"
	case string:
		if x == "" {
			return "0"
		}
		return x
	case float64:
		return strconv.FormatInt(int64(x), 10)
	case json.Number:
		return x.String()
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
