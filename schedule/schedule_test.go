package schedule

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/messages"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenCase is one schedule expanded at a fixed time; Want holds the
// scheduled_tasks produced (uuids and timestamps blanked).
type goldenCase struct {
	Name     string         `json:"name"`
	Now      string         `json:"now"`
	Settings map[string]any `json:"settings"`
	Schedule map[string]any `json:"schedule"`
	Doc      map[string]any `json:"doc"`
	Muted    bool           `json:"muted,omitempty"`
	Want     []any          `json:"want"`
}

func TestAssignGolden(t *testing.T) {
	path := "testdata/assign.json"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			now, err := time.Parse(time.RFC3339, c.Now)
			if err != nil {
				t.Fatal(err)
			}
			g := &messages.Generator{Settings: config.NewSettings(c.Settings), Location: time.UTC, Now: now, Dups: messages.NewDuplicates()}
			sch := Parse(c.Schedule)
			doc := clone(c.Doc)
			Assign(g, doc, &sch, nil, c.Muted)
			got := blank(doc["scheduled_tasks"])
			if *update {
				c.Want = got
				return
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(c.Want)
			if string(gj) != string(wj) {
				t.Errorf("scheduled_tasks =\n%s\nwant\n%s", gj, wj)
			}
		})
	}
	if *update {
		out, _ := json.MarshalIndent(cases, "", "  ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// blank drops the parts that change per run (uuids, history timestamps).
func blank(v any) []any {
	tasks, _ := v.([]any)
	out := make([]any, 0, len(tasks))
	for _, t := range tasks {
		task := clone(t.(map[string]any))
		for _, m := range asSlice(task["messages"]) {
			delete(m.(map[string]any), "uuid")
		}
		for _, h := range asSlice(task["state_history"]) {
			delete(h.(map[string]any), "timestamp")
		}
		out = append(out, task)
	}
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		ok   bool
		want Duration
	}{
		{"8 days", true, Duration{8, "day"}}, {"1 week", true, Duration{1, "week"}},
		{" 2   months ", true, Duration{2, "month"}}, {"3 fortnights", false, Duration{}},
		{"days", false, Duration{}}, {"", false, Duration{}}, {"1.5 days", false, Duration{}},
	}
	for _, c := range cases {
		got, ok := ParseDuration(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v", c.in, got, ok)
		}
	}
	jan31 := time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)
	if got := (Duration{1, "month"}).AddTo(jan31); !got.Equal(time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("month clamp: %v", got)
	}
}

func TestClear(t *testing.T) {
	reported := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	reg := map[string]any{"scheduled_tasks": []any{
		map[string]any{"type": "a", "group": 1.0, "due": "2024-05-03T00:00:00.000Z", "state": "scheduled"},
		map[string]any{"type": "a", "group": 1.0, "due": "2024-06-30T00:00:00.000Z", "state": "scheduled"},
		map[string]any{"type": "a", "group": 2.0, "due": "2024-07-01T00:00:00.000Z", "state": "scheduled"},
		map[string]any{"type": "a", "group": 1.0, "due": "2024-05-02T00:00:00.000Z", "state": "sent"},
		map[string]any{"type": "b", "group": 1.0, "due": "2024-05-02T00:00:00.000Z", "state": "muted"},
	}}
	d := Duration{7, "day"}
	if !Clear(reg, []string{"a"}, &d, reported, "r9", reported, time.UTC) {
		t.Fatal("nothing cleared")
	}
	want := []string{"cleared", "cleared", "scheduled", "sent", "muted"}
	for i, task := range reg["scheduled_tasks"].([]any) {
		if st := task.(map[string]any)["state"]; st != want[i] {
			t.Errorf("task %d state %v, want %s", i, st, want[i])
		}
	}
}
