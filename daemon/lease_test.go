package daemon_test

import (
	"net/http"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
	"sentinel-go/daemon"
)

// TestLeaseLostStopsWork: a daemon with a lease works while it holds it,
// stops at once when another instance takes it (its renewal meets a 409),
// takes it back once that one has not renewed it for a TTL, and releases
// it when it stops. The checkpoint carries each holder's token.
func TestLeaseLostStopsWork(t *testing.T) {
	env := couchtest.New(t)
	sdb := env.MainDB + "-sentinel"
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}),
		map[string]any{"_id": "p1", "type": "person", "name": "One"})
	r := startWith(t, env, func(o *daemon.Options) {
		o.Lease, o.LeaseTTL, o.LeaseRenew = true, 2*time.Second, 300*time.Millisecond
	})
	r.waitFor(t, "the lease held", func() bool { return r.d.Fence() == nil })
	r.waitFor(t, "p1 processed", func() bool { return infoTransitions(t, env, "p1")["generate_shortcode_on_contacts"] != nil })
	token := func() float64 {
		cp := env.Get(t, sdb, "_local/transitions-seq")
		n, _ := cp["lease_token"].(float64)
		return n
	}
	if got := token(); got != 1 {
		t.Fatalf("checkpoint lease_token = %v, want 1", got)
	}

	// Another instance takes the lease over (as after this one's pause):
	// written over the revision read, which a renewal may have just
	// replaced (then read and written again).
	r.waitFor(t, "the lease taken by another instance", func() bool {
		l := env.Get(t, sdb, daemon.LeaseDocID)
		l["holder"], l["instance"], l["token"] = "other", "other", 2.0
		return couchtest.Request(http.MethodPut, env.Server+"/"+sdb+"/"+daemon.LeaseDocID, l, nil) == nil
	})
	r.waitFor(t, "the lease lost", func() bool { return r.d.Fence() != nil })
	env.Save(t, env.MainDB, map[string]any{"_id": "p2", "type": "person", "name": "Two"})
	time.Sleep(time.Second)
	if infoTransitions(t, env, "p2") != nil {
		t.Fatal("p2 was processed by an instance that lost the lease")
	}

	// "other" never renews: after a TTL the lease is taken back, token 3.
	r.waitFor(t, "p2 processed after the takeover", func() bool { return infoTransitions(t, env, "p2")["generate_shortcode_on_contacts"] != nil })
	if got := token(); got != 3 {
		t.Fatalf("checkpoint lease_token = %v, want 3", got)
	}
	r.stop(t)
	if l := env.Get(t, sdb, daemon.LeaseDocID); l["released"] != true || l["token"] != 3.0 {
		t.Fatalf("lease after a clean stop = %v", l)
	}
}
