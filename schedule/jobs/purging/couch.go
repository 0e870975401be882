package purging

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"sentinel-go/couch"
)

// couchServer is Server on CouchDB (or PouchDB Server).
type couchServer struct {
	c *couch.Client
}

// NewCouchServer returns the Server of client c.
func NewCouchServer(c *couch.Client) Server { return couchServer{c: c} }

// Source installs (or updates) the purging design doc and reads through it.
func (s couchServer) Source(ctx context.Context) (Source, error) {
	want := designDoc()
	cur, err := s.c.Main.Get(ctx, DesignDocID)
	switch {
	case err == nil:
		if reflect.DeepEqual(cur["views"], want["views"]) {
			return couchSource{db: s.c.Main}, nil
		}
		want["_rev"] = cur["_rev"]
	case !isNotFound(err):
		return nil, fmt.Errorf("read %s: %w", DesignDocID, err)
	}
	if err := s.c.Main.Put(ctx, want); err != nil {
		return nil, fmt.Errorf("install %s: %w", DesignDocID, err)
	}
	return couchSource{db: s.c.Main}, nil
}

// Users reads every doc of `_users`, in pages.
func (s couchServer) Users(ctx context.Context) ([]map[string]any, error) {
	var out []map[string]any
	err := s.c.Users().AllDocsPages(ctx, map[string]any{"startkey": "org.couchdb.user:", "endkey": "org.couchdb.user:\ufff0",
		"include_docs": true}, pageSize, "", func(rows []couch.Row) error {
		for _, r := range rows {
			if r.Doc != nil {
				out = append(out, r.Doc)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PurgeDB returns `<db>-purged-role-<hash>`, created when missing.
func (s couchServer) PurgeDB(ctx context.Context, hash string) (PurgeDB, error) {
	name := s.c.Location().MainDB + "-purged-role-" + hash
	if err := s.c.EnsureDB(ctx, name); err != nil {
		return nil, err
	}
	return s.c.DB(name), nil
}

// Sentinel is the sentinel db (purge logs).
func (s couchServer) Sentinel() PurgeDB { return s.c.Sentinel }

// couchSource reads the purging views.
type couchSource struct {
	db *couch.DB
}

const ddocName = "sentinel-go-purging"

func (s couchSource) docs(ctx context.Context, view string, params map[string]any) ([]couch.Doc, error) {
	params["include_docs"] = true
	rows, err := s.db.Query(ctx, ddocName, view, params)
	if err != nil {
		return nil, err
	}
	out := make([]couch.Doc, 0, len(rows))
	for _, r := range rows {
		if r.Doc != nil {
			out = append(out, r.Doc)
		}
	}
	return out, nil
}

// paged adds the "after key" of a page to params.
func paged(params map[string]any, after any, limit int) map[string]any {
	if after != nil && after != "" {
		params["startkey"] = after
		params["skip"] = 1
	}
	params["limit"] = limit
	return params
}

func (s couchSource) Contacts(ctx context.Context, after string, limit int) ([]couch.Doc, error) {
	return s.docs(ctx, "contacts", paged(map[string]any{}, after, limit))
}

func (s couchSource) RecordsBySubject(ctx context.Context, subjects []string, limit int) ([]couch.Doc, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	return s.docs(ctx, "by_subject", map[string]any{"keys": subjects, "limit": limit})
}

func (s couchSource) Unallocated(ctx context.Context, after string, limit int) ([]couch.Doc, error) {
	return s.docs(ctx, "unallocated", paged(map[string]any{}, after, limit))
}

func (s couchSource) FinalTasks(ctx context.Context, upTo string, after []any, limit int) ([]couch.Row, error) {
	params := map[string]any{"endkey": []any{upTo, map[string]any{}}}
	if after != nil {
		paged(params, after, limit)
	} else {
		params["limit"] = limit
	}
	return s.db.Query(ctx, ddocName, "final_tasks", params)
}

func (s couchSource) IDs(ctx context.Context, from, to, after string, limit int) ([]string, error) {
	params := paged(map[string]any{"endkey": to}, after, limit)
	if after == "" {
		params["startkey"] = from
	}
	rows, err := s.db.AllDocs(ctx, params)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out, nil
}

func isNotFound(err error) bool { return errors.Is(err, couch.ErrNotFound) }
