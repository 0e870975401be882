package messages

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"sentinel-go/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// lineage builds a hydrated report like the pipeline gives the transitions:
// chw under clinic under health centre under district, each place with a
// primary contact.
func hydratedReport() map[string]any {
	dh := map[string]any{"_id": "dh", "type": "district_hospital", "name": "District One",
		"contact": map[string]any{"_id": "dh_p", "name": "Dora", "phone": "+254712000003"}}
	hc := map[string]any{"_id": "hc", "type": "health_center", "name": "HC One", "parent": dh,
		"contact": map[string]any{"_id": "hc_p", "name": "Hugo", "phone": "+254712000002"}}
	clinic := map[string]any{"_id": "clinic", "type": "clinic", "name": "Clinic One", "parent": hc,
		"contact": map[string]any{"_id": "cl_p", "name": "Cleo", "phone": "+254712000001"}}
	chw := map[string]any{"_id": "chw", "type": "person", "name": "Carol", "phone": "+254712000010", "parent": clinic}
	patient := map[string]any{"_id": "pat", "type": "person", "name": "Paula", "patient_id": "55501", "parent": clinic}
	return map[string]any{"_id": "r1", "type": "data_record", "form": "MSG", "reported_date": 1714557600000.0,
		"fields": map[string]any{"patient_name": "Field Name", "visit": 2.0}, "contact": chw, "_patient": patient}
}

type msgCase struct {
	Name     string         `json:"name"`
	Settings map[string]any `json:"settings"`
	Subject  bool           `json:"patient_subject"`
	From     string         `json:"from,omitempty"`
	Template string         `json:"template"`
	Recip    any            `json:"recipient"`
	Want     map[string]any `json:"want"`
}

func TestGenerateGolden(t *testing.T) {
	path := "testdata/generate.json"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []msgCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			doc := hydratedReport()
			p := doc["_patient"]
			delete(doc, "_patient")
			if c.Subject {
				doc["patient"] = p
			}
			if c.From != "" {
				doc["from"] = c.From
			}
			g := &Generator{Settings: config.NewSettings(c.Settings), Location: time.UTC, Now: now, Dups: NewDuplicates()}
			_, err := g.Add(doc, Spec{Message: c.Template, Recipient: c.Recip}, nil, AddOptions{})
			got := map[string]any{}
			if err != nil {
				got["err"] = err.Error()
			} else {
				task := doc["tasks"].([]any)[0].(map[string]any)
				msg := task["messages"].([]any)[0].(map[string]any)
				got["state"] = task["state"]
				for _, k := range []string{"to", "message", "error", "original_message"} {
					if v, ok := msg[k]; ok {
						got[k] = v
					}
				}
			}
			if *update {
				c.Want = got
				return
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(c.Want)
			if string(gj) != string(wj) {
				t.Errorf("got %s\nwant %s", gj, wj)
			}
		})
	}
	if *update {
		out, _ := json.MarshalIndent(cases, "", "  ")
		_ = os.WriteFile(path, append(out, '\n'), 0o644)
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("A", 200)
	got, cut := Truncate(long, 1)
	if !cut || len(got) != 153 || !strings.HasSuffix(got, "...") {
		t.Errorf("GSM truncation: %d %q", len(got), got[140:])
	}
	if _, cut := Truncate(strings.Repeat("A", 160), 1); cut {
		t.Error("160 GSM characters fit one part")
	}
	if n, gsm := Parts(strings.Repeat("ñ", 10) + "€"); !gsm || n != 1 {
		t.Errorf("extension characters: %d %v", n, gsm)
	}
	if n, gsm := Parts(strings.Repeat("म", 71)); gsm || n != 2 {
		t.Errorf("UCS-2 parts: %d %v", n, gsm)
	}
}

func TestDenied(t *testing.T) {
	cases := []struct {
		settings map[string]any
		from     string
		want     bool
	}{
		{map[string]any{"outgoing_deny_list": "SAFARI"}, "SafariCom", true},
		{map[string]any{"outgoing_deny_list": []any{"+2547001"}}, "+254700123", true},
		{map[string]any{"outgoing_deny_list": "+2547001,,555"}, "+254712345678", false},
		{map[string]any{"outgoing_deny_with_alphas": true}, "MPESA", true},
		{map[string]any{"outgoing_deny_with_alphas": "true"}, "MPESA", false},
		{map[string]any{"outgoing_deny_shorter_than": "6"}, "12345", true},
		{map[string]any{"outgoing_deny_shorter_than": 6.0}, "123456", false},
		{map[string]any{"gateway_number": "+254712345678"}, "+254712345678", true},
		{map[string]any{"outgoing_deny_list": "1"}, "", false},
	}
	for _, c := range cases {
		if got := Denied(config.NewSettings(c.settings), c.from); got != c.want {
			t.Errorf("Denied(%v, %q) = %v", c.settings, c.from, got)
		}
	}
}

func TestDuplicates(t *testing.T) {
	d := NewDuplicates()
	now := time.Now()
	for i := 1; i <= 6; i++ {
		if over := d.Seen("+1", "x", 5, now); over != (i == 6) {
			t.Fatalf("message %d over = %v", i, over)
		}
	}
	if d.Seen("+1", "x", 5, now.Add(31*time.Minute)) {
		t.Fatal("count did not expire after 30 minutes")
	}
	// Text-less messages count under (to, no text): apart from any text,
	// even "" and the reference's "undefined" (messages.md §7).
	for i := 1; i <= 6; i++ {
		if over := d.SeenTextless("+1", 5, now); over != (i == 6) {
			t.Fatalf("text-less message %d over = %v", i, over)
		}
	}
	if d.Seen("+1", "", 5, now) || d.Seen("+1", "undefined", 5, now) {
		t.Fatal("a text shares its count with text-less messages")
	}
}

func TestSetState(t *testing.T) {
	now := time.Now()
	task := map[string]any{"state": "pending", "state_history": []any{map[string]any{"state": "pending"}}}
	if SetState(task, "pending", nil, "", false, now) {
		t.Fatal("same state changed the task")
	}
	if !SetState(task, "failed", map[string]any{"reason": "x"}, "", false, now) || len(task["state_history"].([]any)) != 2 {
		t.Fatalf("task = %v", task)
	}
}

// TestDuplicatesSweepIsBounded: past 10,000 live entries, expired ones are
// swept at most once a minute, not on every message.
func TestDuplicatesSweepIsBounded(t *testing.T) {
	d := NewDuplicates()
	now := time.Now()
	for i := 0; i < 10001; i++ {
		d.Seen("+1", fmt.Sprint(i), 5, now)
	}
	d.Seen("+1", "a", 5, now)
	swept := d.lastSweep
	d.Seen("+1", "b", 5, now.Add(time.Second))
	if d.lastSweep != swept {
		t.Error("swept again within a minute")
	}
	later := now.Add(31 * time.Minute)
	d.Seen("+1", "c", 5, later)
	if len(d.entries) != 1 {
		t.Errorf("after expiry %d entries remain, want 1", len(d.entries))
	}
}

func TestMessageUUIDFromRand(t *testing.T) {
	msg := func(g *Generator) string {
		m, err := g.Message(map[string]any{"from": "+1"}, Spec{Message: "hi", Recipient: "reporting_unit"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m["uuid"].(string)
	}
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	gen := func(r io.Reader) *Generator {
		return &Generator{Settings: config.NewSettings(map[string]any{}), Location: time.UTC, Now: now, Dups: NewDuplicates(), Rand: r}
	}
	seed := [32]byte{3}
	a, b := msg(gen(rand.NewChaCha8(seed))), msg(gen(rand.NewChaCha8(seed)))
	// Version 7 (messages.md §1): the first 48 bits are Now's unix ms.
	v7 := regexp.MustCompile(`^018f3398-c100-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if a != b || !v7.MatchString(a) {
		t.Fatalf("uuids from one seed: %q, %q", a, b)
	}
	if c := msg(gen(nil)); c == a || !v7.MatchString(c) {
		t.Fatalf("uuid from crypto/rand: %q", c)
	}
}
