package couch

import (
	"context"
	"net/http"
	"net/url"
	"sync"
)

// ServiceHeaders are sent with every request to CouchDB: HAProxy in front
// of a CHT server logs them, so that its access log names the daemon as
// the author of each request.
var ServiceHeaders = map[string]string{"X-Medic-Service": "sentinel", "X-Medic-User": "sentinel"}

// headerTransport adds ServiceHeaders to every request. It wraps the one
// transport of a Client, so no request can leave without them.
type headerTransport struct{ base http.RoundTripper }

func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the caller's request.
	r := req.Clone(req.Context())
	SetServiceHeaders(r)
	// Answers come uncompressed: the daemon runs next to its server, where
	// compressing costs both ends more than sending. PouchDB Server
	// compresses whatever it may (gzip, brotli): a feed batch of 500 docs
	// took about 30 % longer, a 21 MB index snapshot 3 s instead of 13 ms.
	r.Header.Set("Accept-Encoding", "identity")
	return t.base.RoundTrip(r)
}

// SetServiceHeaders adds ServiceHeaders to req, for the few requests to
// CouchDB made without a Client (CHT's vault, `_session` checks).
func SetServiceHeaders(req *http.Request) {
	for k, v := range ServiceHeaders {
		req.Header.Set(k, v)
	}
}

// Write is one revision that a write through a DB handle created.
type Write struct {
	ID      string
	Rev     string
	Deleted bool
}

// Auditor is told the revisions written through a DB handle (SetAuditor),
// once the server has accepted them. It must not block: the write it is
// told about is done, and the caller is waiting for it.
type Auditor interface {
	Audit(writes []Write)
}

// SetAuditor makes every successful write through d (Put, Create, Delete,
// each accepted item of BulkDocs) reported to a. Call it before the handle
// is shared.
func (d *DB) SetAuditor(a Auditor) { d.audit = a }

// audited reports writes to the auditor of d, or to the collector of ctx
// (DeferAudit).
func (d *DB) audited(ctx context.Context, writes ...Write) {
	if d.audit == nil || len(writes) == 0 {
		return
	}
	if c, ok := ctx.Value(auditKey{}).(*auditCollector); ok {
		c.add(d.audit, writes)
		return
	}
	d.audit.Audit(writes)
}

type auditKey struct{}

// auditCollector holds the writes made with a DeferAudit context, per
// auditor, in write order.
type auditCollector struct {
	mu     sync.Mutex
	order  []Auditor
	writes map[Auditor][]Write
}

func (c *auditCollector) add(a Auditor, ws []Write) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.writes[a]; !ok {
		c.order = append(c.order, a)
	}
	c.writes[a] = append(c.writes[a], ws...)
}

// DeferAudit returns a context whose writes are reported to their auditors
// only when flush is called, in one call per auditor: a group commit's
// bulk writes then give the audit log one batch to record (one read and
// one write of audit docs) instead of one per request.
func DeferAudit(ctx context.Context) (_ context.Context, flush func()) {
	c := &auditCollector{writes: map[Auditor][]Write{}}
	return context.WithValue(ctx, auditKey{}, c), func() {
		c.mu.Lock()
		order, writes := c.order, c.writes
		c.order, c.writes = nil, map[Auditor][]Write{}
		c.mu.Unlock()
		for _, a := range order {
			a.Audit(writes[a])
		}
	}
}

// docDeleted reports whether doc is a deletion (`_deleted: true`).
func docDeleted(doc Doc) bool {
	del, _ := doc["_deleted"].(bool)
	return del
}

// UserOf is the user name in a server URL ("" when it has none): the
// author the audit log records for the daemon's writes.
func UserOf(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.User == nil {
		return ""
	}
	return u.User.Username()
}

// DBExists reports whether database name exists on the client's server.
func (c *Client) DBExists(ctx context.Context, name string) (bool, error) {
	ok, err := c.kc.DBExists(ctx, name)
	if err != nil {
		return false, c.wrap("check db "+name, err)
	}
	return ok, nil
}
