package couch

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"

	kivik "github.com/go-kivik/kivik/v4"
)

// DB is one database.
type DB struct {
	name   string
	server string
	k      *kivik.DB
	// audit is told every revision written (nil: nobody is).
	audit Auditor
	// tr is the client's transport, for its trace logger.
	tr *reachTransport
}

// Name is the database name.
func (d *DB) Name() string { return d.name }

func (d *DB) wrap(what string, err error) error {
	return wrapErr(fmt.Sprintf("%s (db %s)", what, d.name), err, d.server)
}

// DocCount is the number of docs in the database (its info's doc_count).
func (d *DB) DocCount(ctx context.Context) (int64, error) {
	st, err := d.k.Stats(ctx)
	if err != nil {
		return 0, d.wrap("read db info", err)
	}
	return st.DocCount, nil
}

// Get reads a document; ErrNotFound when missing.
func (d *DB) Get(ctx context.Context, id string) (Doc, error) {
	var doc Doc
	if err := d.k.Get(ctx, id).ScanDoc(&doc); err != nil {
		return nil, d.wrap("get "+id, err)
	}
	return doc, nil
}

// GetRaw reads a document as its JSON bytes (to keep key order, which a
// decoded map loses); ErrNotFound when missing.
func (d *DB) GetRaw(ctx context.Context, id string) ([]byte, error) {
	var raw json.RawMessage
	if err := d.k.Get(ctx, id).ScanDoc(&raw); err != nil {
		return nil, d.wrap("get "+id, err)
	}
	return raw, nil
}

// Put writes doc (which must have an `_id`, and the `_rev` it was read at when
// it exists) and stores the new revision in doc["_rev"].
func (d *DB) Put(ctx context.Context, doc Doc) error {
	id, _ := doc["_id"].(string)
	if id == "" {
		return fmt.Errorf("put: document has no _id")
	}
	rev, err := d.k.Put(ctx, id, doc)
	if err != nil {
		return d.wrap("put "+id, err)
	}
	doc["_rev"] = rev
	d.audited(ctx, Write{ID: id, Rev: rev, Deleted: docDeleted(doc)})
	return nil
}

// Create saves a new document with a server-assigned id (or its own `_id`)
// and stores `_id` and `_rev` in doc.
func (d *DB) Create(ctx context.Context, doc Doc) (string, error) {
	id, rev, err := d.k.CreateDoc(ctx, doc)
	if err != nil {
		return "", d.wrap("create doc", err)
	}
	doc["_id"] = id
	doc["_rev"] = rev
	d.audited(ctx, Write{ID: id, Rev: rev, Deleted: docDeleted(doc)})
	return id, nil
}

// Delete deletes a document revision.
func (d *DB) Delete(ctx context.Context, id, rev string) error {
	newRev, err := d.k.Delete(ctx, id, rev)
	if err != nil {
		return d.wrap("delete "+id, err)
	}
	d.audited(ctx, Write{ID: id, Rev: newRev, Deleted: true})
	return nil
}

// BulkResult is the outcome of one document of a bulk write.
type BulkResult struct {
	ID  string
	Rev string
	Err error // ErrConflict-wrapped, or another error
}

// BulkDocs writes many documents in one request. 409s are reported per
// document, never as the call's error. Successful writes update each doc's _rev.
func (d *DB) BulkDocs(ctx context.Context, docs []Doc) ([]BulkResult, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	in := make([]any, len(docs))
	for i, doc := range docs {
		in[i] = doc
	}
	res, err := d.k.BulkDocs(ctx, in)
	if err != nil {
		return nil, d.wrap("bulk write", err)
	}
	out := make([]BulkResult, len(res))
	var written []Write
	for i, r := range res {
		out[i] = BulkResult{ID: r.ID, Rev: r.Rev}
		if r.Error != nil {
			if kivik.HTTPStatus(r.Error) == http.StatusConflict {
				out[i].Err = fmt.Errorf("bulk write %s: %w", r.ID, ErrConflict)
			} else {
				out[i].Err = d.wrap("bulk write "+r.ID, r.Error)
			}
		} else if i < len(docs) {
			docs[i]["_rev"] = r.Rev
			if _, ok := docs[i]["_id"]; !ok {
				docs[i]["_id"] = r.ID
			}
			if d.audit != nil && r.Rev != "" {
				written = append(written, Write{ID: r.ID, Rev: r.Rev, Deleted: docDeleted(docs[i])})
			}
		}
	}
	d.audited(ctx, written...)
	d.traceBulk(out)
	return out, nil
}

// traceBulk logs, at trace level, what a bulk write did doc by doc: its
// request line says 201 even when every doc of it conflicted.
func (d *DB) traceBulk(res []BulkResult) {
	if d.tr == nil || d.tr.trace == nil {
		return
	}
	ev := d.tr.trace.Trace()
	if !ev.Enabled() {
		return
	}
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
		}
	}
	ev.Str("db", d.name).Int("docs", len(res)).Int("written", len(res)-failed).Int("failed", failed).Msg("Bulk write")
}

// GetMany reads documents by id with `_all_docs?keys=…&include_docs=true`;
// missing or deleted ids are absent from the map.
func (d *DB) GetMany(ctx context.Context, ids []string) (map[string]Doc, error) {
	out := make(map[string]Doc, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rs := d.k.AllDocs(ctx, kivik.Params(map[string]any{"keys": ids, "include_docs": true}))
	defer rs.Close()
	for rs.Next() {
		var doc Doc
		if err := rs.ScanDoc(&doc); err != nil {
			continue // missing or deleted: no doc in the row
		}
		if id, _ := doc["_id"].(string); id != "" {
			out[id] = doc
		}
	}
	if err := rs.Err(); err != nil {
		return nil, d.wrap("read docs", err)
	}
	return out, nil
}

// Row is one row of a view or _all_docs result.
type Row struct {
	ID    string
	Key   any
	Value any
	Doc   Doc
}

// Query runs a view of design doc ddoc with the given parameters (key, keys,
// startkey, endkey, include_docs, limit, skip, reduce, descending…).
func (d *DB) Query(ctx context.Context, ddoc, view string, params map[string]any) ([]Row, error) {
	rs := d.k.Query(ctx, ddoc, view, kivik.Params(params))
	return d.rows(rs, "query "+ddoc+"/"+view)
}

// AllDocs runs _all_docs with the given parameters.
func (d *DB) AllDocs(ctx context.Context, params map[string]any) ([]Row, error) {
	rs := d.k.AllDocs(ctx, kivik.Params(params))
	return d.rows(rs, "all docs")
}

// AllDocsPages reads `_all_docs` with params in pages of size rows, each
// page starting after the last id of the one before (after, when not "",
// is where the first page starts, exclusive), and hands every page to fn.
// It stops after a short page, or at the first error (fn's included).
func (d *DB) AllDocsPages(ctx context.Context, params map[string]any, size int, after string, fn func([]Row) error) error {
	for {
		p := maps.Clone(params)
		p["limit"] = size
		if after != "" {
			p["startkey"], p["skip"] = after, 1
		}
		rows, err := d.AllDocs(ctx, p)
		if err != nil {
			return err
		}
		if err := fn(rows); err != nil {
			return err
		}
		if len(rows) < size {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

func (d *DB) rows(rs *kivik.ResultSet, what string) ([]Row, error) {
	defer rs.Close()
	var out []Row
	for rs.Next() {
		var r Row
		id, err := rs.ID()
		if err != nil {
			return nil, d.wrap(what, err)
		}
		r.ID = id
		var key json.RawMessage
		if err := rs.ScanKey(&key); err == nil && len(key) > 0 {
			_ = json.Unmarshal(key, &r.Key)
		}
		var val json.RawMessage
		if err := rs.ScanValue(&val); err == nil && len(val) > 0 {
			_ = json.Unmarshal(val, &r.Value)
		}
		var doc Doc
		if err := rs.ScanDoc(&doc); err == nil {
			r.Doc = doc
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, d.wrap(what, err)
	}
	return out, nil
}
