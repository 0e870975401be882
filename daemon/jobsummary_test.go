package daemon_test

import (
	"strings"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
)

// TestJobRunSummary: each job run ends with one line saying what it did
// (here: one due message released), also when SIGUSR2 asked for it.
func TestJobRunSummary(t *testing.T) {
	env := couchtest.New(t)
	due := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	env.Save(t, env.MainDB, settings(map[string]any{}),
		map[string]any{"_id": "r1", "type": "data_record", "form": "P", "reported_date": float64(time.Now().Add(-48 * time.Hour).UnixMilli()),
			"scheduled_tasks": []any{map[string]any{"due": due, "state": "scheduled",
				"messages": []any{map[string]any{"to": "+254712000010", "message": "Visit due", "uuid": "u1"}}}}})
	r := start(t, env)
	r.waitFor(t, "the first job run", func() bool { return strings.Contains(r.logs.String(), `"message":"Jobs ran"`) })
	r.d.RunJobs()
	r.waitFor(t, "the SIGUSR2 run", func() bool { return strings.Contains(r.logs.String(), `"trigger":"SIGUSR2"`) })
	var first string
	for _, l := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(l, `"message":"Jobs ran"`) {
			first = l
			break
		}
	}
	if !strings.Contains(first, `"due_tasks.released":1`) || !strings.Contains(first, `"failed_jobs":0`) {
		t.Errorf("first run's summary: %s", first)
	}
}
