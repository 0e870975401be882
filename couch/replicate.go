package couch

import (
	"context"
	"fmt"
	"io"
	"net/http"

	kivik "github.com/go-kivik/kivik/v4"
	"github.com/go-kivik/kivik/v4/couchdb"
)

// The calls the jobs that move docs between databases need (user-meta
// replication, archiving, purging): revision-exact copies, `_purge`, and
// databases created on demand.

// EnsureDB creates database name when it is missing (a 412 from a
// concurrent creation is success).
func (c *Client) EnsureDB(ctx context.Context, name string) error {
	ok, err := c.kc.DBExists(ctx, name)
	if err != nil {
		return c.wrap("check db "+name, err)
	}
	if ok {
		return nil
	}
	if err := c.kc.CreateDB(ctx, name); err != nil && kivik.HTTPStatus(err) != http.StatusPreconditionFailed {
		return c.wrap("create db "+name, err)
	}
	return nil
}

// GetFull reads the winning revision of a doc with its revision history
// (`_revisions`) and its attachments inline, as replication copies it.
// Inline means JSON: CouchDB otherwise answers multipart/related, whose
// attachment stubs (`follows`) a later `_bulk_docs` cannot take (a 500).
func (d *DB) GetFull(ctx context.Context, id string) (Doc, error) {
	var doc Doc
	err := d.k.Get(ctx, id, kivik.Params(map[string]any{"revs": true, "attachments": true}), couchdb.OptionNoMultipartGet()).ScanDoc(&doc)
	if err != nil {
		return nil, d.wrap("get "+id, err)
	}
	return doc, nil
}

// LeafRevs returns every leaf revision of a doc: the winner, live
// conflicts and deleted conflict leaves; ErrNotFound when the doc has never
// existed (a deleted doc has its tombstone as a leaf).
func (d *DB) LeafRevs(ctx context.Context, id string) ([]string, error) {
	var doc struct {
		Rev     string   `json:"_rev"`
		Conf    []string `json:"_conflicts"`
		DelConf []string `json:"_deleted_conflicts"`
	}
	err := d.k.Get(ctx, id, kivik.Params(map[string]any{"conflicts": true, "deleted_conflicts": true})).ScanDoc(&doc)
	if err != nil && kivik.HTTPStatus(err) == http.StatusNotFound {
		// Deleted: the tombstone's revision is still a leaf to purge.
		return d.deletedLeaf(ctx, id)
	}
	if err != nil {
		return nil, d.wrap("get "+id, err)
	}
	out := append([]string{doc.Rev}, doc.Conf...)
	return append(out, doc.DelConf...), nil
}

// deletedLeaf finds the tombstone revision of a deleted doc from `_changes`
// (a GET of a deleted doc answers 404 without its revision).
func (d *DB) deletedLeaf(ctx context.Context, id string) ([]string, error) {
	b, err := d.Changes(ctx, FeedOptions{Since: "0", DocIDs: []string{id}, Normal: true})
	if err != nil {
		return nil, err
	}
	for _, c := range b.Changes {
		if c.ID == id && c.Rev != "" {
			return []string{c.Rev}, nil
		}
	}
	return nil, fmt.Errorf("get %s (db %s): %w", id, d.name, ErrNotFound)
}

// PutReplicated writes docs exactly as given (each with its `_rev` and
// `_revisions`) with new_edits=false, as replication does: a revision the
// database already has is not written again.
func (d *DB) PutReplicated(ctx context.Context, docs []Doc) error {
	if len(docs) == 0 {
		return nil
	}
	in := make([]any, len(docs))
	for i, doc := range docs {
		in[i] = doc
	}
	res, err := d.k.BulkDocs(ctx, in, kivik.Param("new_edits", false))
	if err != nil {
		return d.wrap("replicate docs", err)
	}
	for _, r := range res {
		if r.Error != nil {
			return d.wrap("replicate "+r.ID, r.Error)
		}
	}
	return nil
}

// Purge removes revisions for good (CouchDB `_purge`: no tombstone, no
// trace in `_changes`). Servers without `_purge` (PouchDB Server) fail it.
func (d *DB) Purge(ctx context.Context, revs map[string][]string) error {
	if len(revs) == 0 {
		return nil
	}
	if _, err := d.k.Purge(ctx, revs); err != nil {
		return d.wrap("purge", err)
	}
	return nil
}

// Revs returns the current revision of each id that exists (not deleted).
func (d *DB) Revs(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := d.AllDocs(ctx, map[string]any{"keys": ids})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		v, _ := r.Value.(map[string]any)
		if v == nil || v["deleted"] == true {
			continue
		}
		if rev, _ := v["rev"].(string); rev != "" {
			out[r.ID] = rev
		}
	}
	return out, nil
}

// IDRange lists the live ids and revisions of `_all_docs` from startkey to
// endkey (inclusive), at most limit rows after skipping the startkey row
// when skipFirst (paging).
func (d *DB) IDRange(ctx context.Context, startkey, endkey string, limit int, skipFirst bool) ([]Row, error) {
	params := map[string]any{"startkey": startkey, "endkey": endkey}
	if limit > 0 {
		params["limit"] = limit
	}
	if skipFirst {
		params["skip"] = 1
	}
	return d.AllDocs(ctx, params)
}

// Attachment reads the content of attachment name of doc id; ErrNotFound
// when the doc or the attachment is missing.
func (d *DB) Attachment(ctx context.Context, id, name string) ([]byte, error) {
	att, err := d.k.GetAttachment(ctx, id, name)
	if err != nil {
		return nil, d.wrap("get attachment "+name+" of "+id, err)
	}
	defer att.Content.Close()
	b, err := io.ReadAll(att.Content)
	if err != nil {
		return nil, d.wrap("read attachment "+name+" of "+id, err)
	}
	return b, nil
}
