// Package transitions holds the transitions the engine (package pipeline)
// runs on every change: the Transition interface and what a transition may
// use (Env, Change, Store), the registry of transitions in their fixed
// reference order with the config they are built from, the config checks,
// and one file per transition.
package transitions

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/outbound"
)

// Doc is a JSON document.
type Doc = map[string]any

// Transition is one named step of the pipeline.
type Transition interface {
	// Name is the key in settings.transitions and in info docs.
	Name() string
	// Filter decides cheaply, from the hydrated doc and its info doc, whether
	// Run applies. It must not write anything.
	Filter(env *Env, c *Change) bool
	// Run does the work on c.Doc (in memory) and may write other docs. It
	// reports whether the doc changed.
	Run(ctx context.Context, env *Env, c *Change) (changed bool, err error)
}

// Change is the doc a change is about, as the transitions see it.
type Change struct {
	ID  string
	Seq string
	// Rev is the revision being processed (before the save).
	Rev string
	// Doc is hydrated; transitions edit it in place.
	Doc Doc
	// Info is the doc's info doc from the sentinel db.
	Info Doc
}

// HasRun reports whether info records any run of transition name.
func (c *Change) HasRun(name string) bool {
	ts, _ := c.Info["transitions"].(map[string]any)
	_, ok := ts[name]
	return ok
}

// ChangedError is a transition failure that still counts as a change: the
// error is saved on the doc and the info doc records `ok: false`.
type ChangedError struct{ Err error }

func (e *ChangedError) Error() string { return e.Err.Error() }
func (e *ChangedError) Unwrap() error { return e.Err }

// Store is the main database as the transitions use it. *couch.DB implements it.
type Store interface {
	lineage.Store
	Get(ctx context.Context, id string) (Doc, error)
	Put(ctx context.Context, doc Doc) error
	Create(ctx context.Context, doc Doc) (string, error)
	ContactsByPhone(ctx context.Context, phone string) ([]Doc, error)
	ContactsByRCCode(ctx context.Context, code string) ([]Doc, error)
	UsedShortcodes(ctx context.Context, codes []string) (map[string]bool, error)
	ReportsBySubject(ctx context.Context, ids []string) ([]Doc, error)
	ReportsByFreetext(ctx context.Context, term string) ([]couch.FreetextReport, error)
	DescendantIDs(ctx context.Context, ancestorID string) ([]string, error)
	// ReportsByDate returns reports of forms (any when empty) with a reported_date in [start, end], newest first.
	ReportsByDate(ctx context.Context, forms []string, start, end float64) ([]Doc, error)
	// ReportsByFormAndParent returns reports of form whose stored contact.parent._id is parentID, oldest first.
	ReportsByFormAndParent(ctx context.Context, form, parentID string) ([]Doc, error)
	// BulkDocs writes many docs in one request; 409s are reported per doc.
	BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error)
}

var _ Store = (*couch.DB)(nil)

// InfoStore is the sentinel db as the pipeline uses it. *couch.DB implements it.
type InfoStore interface {
	Get(ctx context.Context, id string) (Doc, error)
	Put(ctx context.Context, doc Doc) error
}

var _ InfoStore = (*couch.DB)(nil)

// ISO formats t as the daemon writes dates: UTC with milliseconds.
func ISO(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Env is what a transition may use while it runs: the config loaded when the
// change started, the database, the expression sandbox and the clock.
type Env struct {
	Config   *Config
	Store    Store
	Sentinel InfoStore // the sentinel db (info docs of other docs, e.g. muting_history)
	JS       *jsexpr.Sandbox
	Hydrator *lineage.Hydrator
	Log      zerolog.Logger
	// Now is the processing time (synthetic_date when set).
	Now time.Time
	// Location is the zone of date arithmetic (TZ).
	Location *time.Location
	// Dups counts identical outgoing messages across the process.
	Dups *messages.Duplicates
	// Secrets holds the credentials of outbound pushes (nil: environment only).
	Secrets outbound.SecretStore
	// PhoneOwner picks the contact a shared phone number is attributed to.
	PhoneOwner PhoneOwner
	// Outbox queues outbound pushes for a worker (nil: mark_for_outbound
	// sends them inline, as sentinel explain and some tests need).
	Outbox Outbox
	// Trace, when set, is told each bool_expr evaluation (sentinel explain;
	// nil in the daemon).
	Trace func(ev TraceEvent)
	// Rand is the source of random bytes of shortcodes and message uuids;
	// nil means crypto/rand.
	Rand io.Reader
	// Users is the server's `_users` database (create_user_for_contacts);
	// nil where users cannot be written (sentinel explain).
	Users UserStore
}

// UserStore is the server's `_users` database as CHT's user layer uses it.
// *couch.Users implements it.
type UserStore interface {
	Get(ctx context.Context, id string) (Doc, error)
	Put(ctx context.Context, doc Doc) error
	// IsServerAdmin reports whether name is a server admin (whose password
	// is never reset).
	IsServerAdmin(ctx context.Context, name string) (bool, error)
	// HasUserForContact reports whether a user of the contact exists: a
	// change run again (after a 409, or replayed after a crash) must not
	// create a second one.
	HasUserForContact(ctx context.Context, contactID string) (bool, error)
}

var _ UserStore = (*couch.Users)(nil)

// Outbox takes the outbound pushes of a change, to be sent by a worker; it
// never blocks on the network. *outbound.Queue implements it.
type Outbox interface {
	Enqueue(docID string, items []outbound.Item)
}

var _ Outbox = (*outbound.Queue)(nil)

// Settings is a shortcut for the loaded settings.
func (e *Env) Settings() *config.Settings { return e.Config.Settings }

// IsNotFound reports whether err means a missing document.
func IsNotFound(err error) bool { return errors.Is(err, couch.ErrNotFound) }

// IsConflict reports whether err is a 409.
func IsConflict(err error) bool { return errors.Is(err, couch.ErrConflict) }
