package transitions

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/memdb"
)

func TestReportPeriod(t *testing.T) {
	cases := []struct {
		fields map[string]any
		kind   string
		value  any
		ok     bool
	}{
		{map[string]any{"month": 2.0}, "month", 2.0, true},
		{map[string]any{"month_num": "3"}, "month", "3", true},
		{map[string]any{"month": 0.0, "month_num": 4.0}, "month", 4.0, true},
		{map[string]any{"week": 22.0, "month": 5.0}, "week", 22.0, true},
		{map[string]any{"week_number": 43.0}, "week", 43.0, true},
		{map[string]any{"week": "", "week_number": 0.0, "month": 1.0}, "month", 1.0, true},
		{map[string]any{"year": 2018.0}, "", nil, false},
		{nil, "", nil, false},
	}
	for _, c := range cases {
		kind, value, ok := reportPeriod(c.fields)
		if kind != c.kind || fmt.Sprint(value) != fmt.Sprint(c.value) || ok != c.ok {
			t.Errorf("reportPeriod(%v) = %q, %v, %v", c.fields, kind, value, ok)
		}
	}
}

func TestUpdateScheduledReportsFilter(t *testing.T) {
	tr, _ := newUpdateScheduledReports(config.NewSettings(map[string]any{}), "transitions.update_scheduled_reports")
	env := &Env{}
	base := func(over map[string]any) Doc {
		d := Doc{"type": "data_record", "form": "F", "fields": map[string]any{"year": 2018.0, "month": 2.0}}
		for k, v := range over {
			d[k] = v
		}
		return d
	}
	cases := []struct {
		name string
		doc  Doc
		info Doc
		want bool
	}{
		{"monthly report", base(nil), Doc{}, true},
		{"empty errors", base(map[string]any{"errors": []any{}}), Doc{}, true},
		{"with errors", base(map[string]any{"errors": []any{map[string]any{"code": "x"}}}), Doc{}, false},
		{"only year", base(map[string]any{"fields": map[string]any{"year": 2018.0}}), Doc{}, false},
		{"no year", base(map[string]any{"fields": map[string]any{"week": 3.0}}), Doc{}, false},
		{"weekly", base(map[string]any{"fields": map[string]any{"year": "2018", "week_number": 3.0}}), Doc{}, true},
		{"no form", base(map[string]any{"form": nil}), Doc{}, false},
		{"a contact", base(map[string]any{"type": "person"}), Doc{}, false},
		{"already run", base(nil), Doc{"transitions": map[string]any{"update_scheduled_reports": map[string]any{"ok": true}}}, false},
	}
	for _, c := range cases {
		if got := tr.Filter(env, &Change{Doc: c.doc, Info: c.info}); got != c.want {
			t.Errorf("%s: Filter = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLeafPlaceTypes(t *testing.T) {
	hier := []any{
		map[string]any{"id": "district_hospital"},
		map[string]any{"id": "health_center", "parents": []any{"district_hospital"}},
		map[string]any{"id": "clinic", "parents": []any{"health_center"}},
		map[string]any{"id": "person", "parents": []any{"clinic", "health_center"}, "person": true},
	}
	s := config.NewSettings(map[string]any{"contact_types": hier})
	cases := []struct {
		c    Doc
		want bool
	}{
		{Doc{"type": "clinic"}, true}, {Doc{"type": "contact", "contact_type": "clinic"}, true},
		{Doc{"type": "health_center"}, false}, {Doc{"type": "person"}, false}, {nil, false},
	}
	for _, c := range cases {
		if got := isLeafPlace(s, c.c); got != c.want {
			t.Errorf("isLeafPlace(%v) = %v", c.c, got)
		}
	}
	// Without contact_types there is no leaf type at all.
	if isLeafPlace(config.NewSettings(map[string]any{}), Doc{"type": "clinic"}) {
		t.Error("leaf type found without contact_types")
	}
}

func usrWorld(reports ...Doc) *memdb.DB {
	lineageOf := map[string]any{"_id": "hc", "parent": map[string]any{"_id": "district"}}
	docs := []Doc{
		{"_id": "district", "type": "district_hospital"},
		{"_id": "hc", "type": "health_center", "parent": map[string]any{"_id": "district"}},
		{"_id": "clinic", "type": "clinic", "parent": lineageOf},
		{"_id": "clinic2", "type": "clinic", "parent": lineageOf},
		{"_id": "p1", "type": "person", "parent": map[string]any{"_id": "clinic", "parent": lineageOf}},
		{"_id": "p2", "type": "person", "parent": map[string]any{"_id": "clinic", "parent": lineageOf}},
		{"_id": "p3", "type": "person", "parent": map[string]any{"_id": "clinic2", "parent": lineageOf}},
		{"_id": "sup", "type": "person", "parent": map[string]any{"_id": "hc", "parent": map[string]any{"_id": "district"}}},
	}
	return memdb.New("medic").Load(append(docs, reports...)...)
}

func usrReport(id, person, storedParent string, fields map[string]any) Doc {
	return Doc{"_id": id, "_rev": "1-a", "type": "data_record", "form": "F", "reported_date": 1.0, "fields": fields,
		"contact": map[string]any{"_id": person, "parent": map[string]any{"_id": storedParent}}}
}

func TestUpdateScheduledReportsRun(t *testing.T) {
	month := func(m any) map[string]any { return map[string]any{"year": 2018.0, "month": m} }
	cases := []struct {
		name     string
		reports  []Doc
		doc      string
		changed  bool
		survives []string // the reports left in the db
	}{
		{"no duplicates: recorded, nothing deleted", []Doc{usrReport("a", "p1", "clinic", month(2.0))}, "a", true, []string{"a"}},
		{"duplicates of the same clinic are deleted", []Doc{
			usrReport("a", "p1", "clinic", month(2.0)),
			usrReport("b", "p2", "clinic", map[string]any{"year": 2018.0, "month_num": 2.0}),
			usrReport("c", "sup", "clinic", month(2.0)),                                 // stale stored lineage: still a duplicate
			usrReport("d", "p1", "clinic", month("2")),                                  // "2" is not 2
			usrReport("e", "p1", "clinic", map[string]any{"year": 2018.0, "week": 2.0}), // a week, not a month
			usrReport("f", "p3", "clinic2", month(2.0)),                                 // another clinic
			usrReport("g", "p1", "clinic", map[string]any{"year": 2019.0, "month": 2.0}),
		}, "b", true, []string{"b", "d", "e", "f", "g"}},
		{"reporter under a health centre: skipped", []Doc{
			usrReport("a", "sup", "hc", month(2.0)), usrReport("b", "sup", "hc", month(2.0))}, "a", false, []string{"a", "b"}},
		{"stale stored lineage: the report itself is not found", []Doc{
			usrReport("a", "p1", "elsewhere", month(2.0))}, "a", false, []string{"a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := usrWorld(c.reports...)
			env := alertsEnv(t, map[string]any{"transitions": map[string]any{"update_scheduled_reports": true},
				"contact_types": []any{
					map[string]any{"id": "district_hospital"},
					map[string]any{"id": "health_center", "parents": []any{"district_hospital"}},
					map[string]any{"id": "clinic", "parents": []any{"health_center"}},
					map[string]any{"id": "person", "parents": []any{"clinic", "health_center"}, "person": true},
				}}, store, time.Second)
			tr := env.Config.Transitions[0]
			ch := &Change{ID: c.doc, Doc: hydrated(t, env, c.doc), Info: Doc{}}
			changed, err := tr.Run(context.Background(), env, ch)
			if err != nil || changed != c.changed {
				t.Fatalf("Run = %v, %v", changed, err)
			}
			var left []string
			for id, d := range store.All() {
				if d["type"] == "data_record" {
					left = append(left, id)
				}
			}
			sort.Strings(left)
			if strings.Join(left, ",") != strings.Join(c.survives, ",") {
				t.Errorf("reports left = %v, want %v", left, c.survives)
			}
		})
	}
}
