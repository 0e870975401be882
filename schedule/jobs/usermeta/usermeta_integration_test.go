package usermeta

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"sentinel-go/couch/couchtest"
	"sentinel-go/schedule/jobs"
)

// TestReplicateCopies runs the job against the test server: live
// telemetry/feedback/interaction docs of meta dbs reach <db>-users-meta;
// deleted docs, other ids and other databases do not. PouchDB Server has no
// _purge, so there the run ends with that error after the copy.
func TestReplicateCopies(t *testing.T) {
	e := couchtest.New(t)
	ctx := context.Background()
	meta, other, target := e.MainDB+"-user-chw1-meta", e.MainDB+"-user-chw1", e.MainDB+"-users-meta"
	for _, db := range []string{meta, other} {
		if err := e.Client.EnsureDB(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, db := range []string{meta, other, target} {
			_ = couchtest.Request(http.MethodDelete, e.Server+"/"+db, nil, nil)
		}
	})
	e.Save(t, meta, map[string]any{"_id": "telemetry-a"}, map[string]any{"_id": "feedback-b"},
		map[string]any{"_id": "interaction-c"}, map[string]any{"_id": "read:report:r1"},
		map[string]any{"_id": "telemetry-gone", "_deleted": true})
	e.Save(t, other, map[string]any{"_id": "feedback-in-user-db"})
	env := &jobs.Env{Log: zerolog.Nop()}
	err := Replicate(ctx, e.Client, env)
	if err != nil && !strings.Contains(err.Error(), "purge") {
		t.Fatal(err)
	}
	rows, rerr := e.Client.DB(target).AllDocs(ctx, map[string]any{})
	if rerr != nil {
		t.Fatal(rerr)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	if got := strings.Join(ids, " "); got != "feedback-b interaction-c telemetry-a" {
		t.Fatalf("copied %q", got)
	}
}
