package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch/couchtest"
)

func TestInSendWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2024, 5, 1, h, m, 0, 0, time.UTC) }
	cases := []struct {
		from, to int
		now      time.Time
		want     bool
	}{
		{0, 23 * 60, at(23, 0), true},
		{0, 23 * 60, at(23, 1), false},
		{8 * 60, 17 * 60, at(7, 59), false},
		{8 * 60, 17 * 60, at(8, 0), true},
		{22 * 60, 6 * 60, at(23, 0), false}, // overnight windows never match
	}
	for _, c := range cases {
		if got := InSendWindow(c.from, c.to, c.now); got != c.want {
			t.Errorf("InSendWindow(%d, %d, %s) = %v", c.from, c.to, c.now.Format("15:04"), got)
		}
	}
}

// TestDueTasksPaging releases every due task of a view read in pages smaller
// than the number of docs (rows leave the view as their docs are released).
func TestDueTasksPaging(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	if err := env.Client.Main.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var docs []map[string]any
	for i := 0; i < 7; i++ {
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("r%d", i), "type": "data_record", "from": "+254700000001",
			"scheduled_tasks": []any{
				map[string]any{"due": now.Add(-time.Duration(i+1) * time.Hour).Format(time.RFC3339), "state": "scheduled",
					"messages": []any{map[string]any{"to": "+254700000001", "message": "hi", "uuid": "u"}}},
				map[string]any{"due": now.Add(-time.Duration(i+1) * time.Hour).Format(time.RFC3339), "state": "scheduled",
					"messages": []any{map[string]any{"to": "+254700000001", "message": "hi", "uuid": "v"}}}}})
	}
	env.Save(t, env.MainDB, docs...)
	settings := config.NewSettings(map[string]any{"schedule_evening_hours": 23.0, "schedule_evening_minutes": 59.0})
	jenv := &Env{Main: env.Client.Main, Sentinel: env.Client.Sentinel, Settings: settings, Location: time.UTC, Log: zerolog.Nop(),
		Clock: func() time.Time { return now }}
	if err := (DueTasks{PageSize: 2}).Run(ctx, jenv); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		d := env.Get(t, env.MainDB, fmt.Sprintf("r%d", i))
		for _, task := range d["scheduled_tasks"].([]any) {
			if st := task.(map[string]any)["state"]; st != "pending" {
				t.Errorf("r%d: task still %v", i, st)
			}
		}
	}
}
