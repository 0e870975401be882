package jobs

import (
	"context"
	"net/http"
	"testing"

	"github.com/rs/zerolog"

	"sentinel-go/couch/couchtest"
)

func TestBackgroundCleanup(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	env.Save(t, env.MainDB, map[string]any{"_id": "gone"}, map[string]any{"_id": "kept"})
	env.Save(t, env.MainDB+"-sentinel", map[string]any{"_id": "gone-info", "type": "info"}, map[string]any{"_id": "kept-info", "type": "info"})
	userDB := env.MainDB + "-user-alice"
	if err := couchtest.Request(http.MethodPut, env.Server+"/"+userDB, nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = couchtest.Request(http.MethodDelete, env.Server+"/"+userDB, nil, nil) })
	env.Save(t, userDB, map[string]any{"_id": "read:report:gone"})
	gone := env.Get(t, env.MainDB, "gone")
	if err := couchtest.Request(http.MethodDelete, env.Server+"/"+env.MainDB+"/gone?rev="+gone["_rev"].(string), nil, nil); err != nil {
		t.Fatal(err)
	}
	jenv := &Env{Main: env.Client.Main, Sentinel: env.Client.Sentinel, Client: env.Client, Log: zerolog.Nop()}
	if err := (BackgroundCleanup{BatchSize: 2}).Run(ctx, jenv); err != nil {
		t.Fatal(err)
	}
	if env.Get(t, env.MainDB+"-sentinel", "gone-info") != nil || env.Get(t, userDB, "read:report:gone") != nil {
		t.Fatal("the deleted doc's info doc or read marker is still there")
	}
	if env.Get(t, env.MainDB+"-sentinel", "kept-info") == nil {
		t.Fatal("an info doc of a live doc was deleted")
	}
	if cp := env.Get(t, env.MainDB+"-sentinel", BackgroundSeqID); cp == nil {
		t.Fatal("no background checkpoint")
	}
	// A second run starts from the checkpoint and finds nothing to do.
	if err := (BackgroundCleanup{}).Run(ctx, jenv); err != nil {
		t.Fatal(err)
	}
}
