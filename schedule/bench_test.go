package schedule

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/messages"
)

// BenchmarkAssign expands each schedule of the golden cases on its doc
// (offsets, send times, message rendering).
func BenchmarkAssign(b *testing.B) {
	raw, err := os.ReadFile("testdata/assign.json")
	if err != nil {
		b.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		b.Fatal(err)
	}
	type prepared struct {
		g   *messages.Generator
		sch Schedule
		doc map[string]any
	}
	var ps []prepared
	for _, c := range cases {
		now, err := time.Parse(time.RFC3339, c.Now)
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, prepared{&messages.Generator{Settings: config.NewSettings(c.Settings), Location: time.UTC, Now: now, Dups: messages.NewDuplicates()}, Parse(c.Schedule), c.Doc})
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range ps {
			Assign(ps[i].g, clone(ps[i].doc), &ps[i].sch, nil, false)
		}
	}
}
