package purging

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/schedule/jobs"
)

func TestRoleSetHash(t *testing.T) {
	cases := []struct {
		roles []string
		want  []string
		hash  string
	}{
		{[]string{"chw"}, []string{"chw"}, "dc6aef2f5bbad17a51df3cbf5eea105a"},
		{[]string{"nurse", "chw", "chw"}, []string{"chw", "nurse"}, "c4260cbcefe05108249119c774d96e14"},
		{[]string{"supervisor", "chw"}, []string{"chw", "supervisor"}, "c1b0f7e45cfa0d3de7b3b3face3fa275"},
		// JavaScript sorts by UTF-16 code units: U+1F600 (D83D DE00) before
		// U+FF21, which UTF-8 byte order puts the other way round.
		{[]string{"\uFF21", "\U0001F600"}, []string{"\U0001F600", "\uFF21"}, ""},
	}
	for _, c := range cases {
		rs := NewRoleSet(c.roles)
		if strings.Join(rs.Roles, ",") != strings.Join(c.want, ",") {
			t.Errorf("NewRoleSet(%q).Roles = %q, want %q", c.roles, rs.Roles, c.want)
		}
		if c.hash != "" && rs.Hash != c.hash {
			t.Errorf("hash of %q = %s, want %s", c.roles, rs.Hash, c.hash)
		}
	}
}

func TestIsOffline(t *testing.T) {
	roles := map[string]any{"chw": map[string]any{"offline": true}, "supervisor": map[string]any{"offline": false}}
	for _, c := range []struct {
		roles []any
		want  bool
	}{
		{[]any{"chw"}, true},
		{[]any{"nurse"}, true},
		{[]any{"supervisor", "chw"}, true},
		{[]any{"supervisor"}, false},
		{[]any{"admin"}, false},
		{[]any{"mm-online", "chw"}, false},
		{[]any{"_admin", "nurse"}, false},
		{[]any{}, false},
		{nil, false},
	} {
		if got := IsOffline(map[string]any{"roles": c.roles}, roles); got != c.want {
			t.Errorf("IsOffline(%v) = %v, want %v", c.roles, got, c.want)
		}
	}
	if !IsOffline(map[string]any{"roles": []any{"supervisor"}}, nil) {
		t.Error("without settings.roles every non-admin user is offline")
	}
}

func TestReplicationSubject(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  map[string]any
		want string
	}{
		{"patient_id field", map[string]any{"form": "V", "fields": map[string]any{"patient_id": "p1"}}, "p1"},
		{"empty patient_id falls through to patient_uuid", map[string]any{"form": "V", "fields": map[string]any{"patient_id": "", "patient_uuid": "u1"}}, "u1"},
		{"place_id", map[string]any{"form": "V", "place_id": "c1", "contact": map[string]any{"_id": "chw"}}, "c1"},
		{"only a contact", map[string]any{"form": "V", "contact": map[string]any{"_id": "chw"}}, "chw"},
		{"registration not found goes to the contact", map[string]any{"form": "V", "fields": map[string]any{"patient_id": "p1"},
			"contact": map[string]any{"_id": "chw"}, "errors": []any{map[string]any{"code": "registration_not_found"}}}, "chw"},
		{"no subject", map[string]any{"form": "V", "fields": map[string]any{}}, ""},
		{"incoming sms", map[string]any{"sms_message": map[string]any{}, "contact": map[string]any{"_id": "c1"}}, "c1"},
		{"outgoing message", map[string]any{"kujua_message": true, "tasks": []any{map[string]any{"messages": []any{map[string]any{"contact": map[string]any{"_id": "p2"}}}}}}, "p2"},
		{"message without contact", map[string]any{"sms_message": true}, ""},
	} {
		if got := ReplicationSubject(c.doc); got != c.want {
			t.Errorf("%s: subject = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestSubjectViewMatchesGo runs the view's subject function in the sandbox
// on the same docs as ReplicationSubject: the two must agree.
func TestSubjectViewMatchesGo(t *testing.T) {
	p, err := jsexpr.CompileFunction("subject", subjectJS)
	if err != nil {
		t.Fatal(err)
	}
	sb := jsexpr.NewSandbox(jsexpr.Options{})
	docs := []map[string]any{
		{"form": "V", "fields": map[string]any{"patient_id": "", "patient_uuid": "u1"}},
		{"form": "V", "patient_id": "p0", "fields": map[string]any{"patient_id": "p1"}},
		{"form": "V", "fields": map[string]any{"patient_id": "p1"}, "contact": map[string]any{"_id": "chw"}, "errors": []any{map[string]any{"code": "invalid_patient_id"}}},
		{"form": "V", "fields": map[string]any{"place_id": 5.0}, "contact": map[string]any{"_id": "chw"}},
		{"form": "", "sms_message": true, "contact": map[string]any{"_id": "c"}},
		{"kujua_message": true, "tasks": []any{}},
		{"kujua_message": true, "tasks": []any{map[string]any{"messages": []any{map[string]any{"contact": map[string]any{"_id": "p2"}}}}}},
		{"type": "data_record"},
	}
	for i, d := range docs {
		got, err := sb.Call(context.Background(), p, d)
		if err != nil {
			t.Fatal(err)
		}
		if want := ReplicationSubject(d); got != want {
			t.Errorf("doc %d: view says %v, Go says %q", i, got, want)
		}
	}
}

func TestScriptAPI(t *testing.T) {
	perms := map[string]any{"can_edit": []any{"chw", "nurse"}, "can_delete": []any{"nurse"}}
	roles := map[string]any{"chw": map[string]any{}, "nurse": map[string]any{}}
	v1 := scriptAPI(perms, roles)["v1"].(map[string]any)
	has := v1["hasPermissions"].(func(...any) any)
	hasAny := v1["hasAnyPermission"].(func(...any) any)
	for _, c := range []struct {
		name string
		got  any
		want bool
	}{
		{"held", has("can_edit", []any{"chw"}), true},
		{"not held", has("can_delete", []any{"chw"}), false},
		{"all of a list", has([]any{"can_edit", "can_delete"}, []any{"nurse"}), true},
		{"denied permission absent", has([]any{"can_edit", "!can_delete"}, []any{"chw"}), true},
		{"denied permission held", has([]any{"!can_delete"}, []any{"nurse"}), false},
		{"unknown role ignored", has("can_edit", []any{"stranger"}), false},
		{"admin holds everything", has("can_anything", []any{"admin"}), true},
		{"admin fails denied", has("!can_edit", []any{"admin"}), false},
		{"missing permission", has("can_fly", []any{"chw"}), false},
		{"invalid arguments", has(), false},
		{"invalid roles", has("can_edit", "chw"), false},
		{"explicit settings", has("can_x", []any{"chw"}, map[string]any{"can_x": []any{"chw"}}), true},
		{"any group", hasAny([]any{[]any{"can_delete"}, []any{"can_edit"}}, []any{"chw"}), true},
		{"no group", hasAny([]any{[]any{"can_delete"}}, []any{"chw"}), false},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

// memServer is Server in memory: the main db's docs, `_users`, the purge
// dbs and the sentinel db.
type memServer struct {
	docs   []couch.Doc // sorted by _id
	users  []map[string]any
	purged map[string]*memPurge
	logs   *memPurge
}

type memPurge struct {
	docs   map[string]couch.Doc
	writes int
}

func newMemPurge() *memPurge { return &memPurge{docs: map[string]couch.Doc{}} }

func (m *memPurge) AllDocs(_ context.Context, p map[string]any) ([]couch.Row, error) {
	var out []couch.Row
	for _, k := range p["keys"].([]string) {
		if d, ok := m.docs[k]; ok {
			out = append(out, couch.Row{ID: k, Value: map[string]any{"rev": d["_rev"], "deleted": d["_deleted"] == true}})
		}
	}
	return out, nil
}

func (m *memPurge) BulkDocs(_ context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	for _, d := range docs {
		id := d["_id"].(string)
		gen := 0
		if old, ok := m.docs[id]; ok {
			gen, _ = strconv.Atoi(strings.Split(old["_rev"].(string), "-")[0])
		}
		c := jsv.CloneMap(d)
		c["_rev"] = fmt.Sprintf("%d-x", gen+1)
		m.docs[id] = c
		m.writes++
	}
	return nil, nil
}

func (m *memPurge) Put(_ context.Context, d couch.Doc) error {
	id := d["_id"].(string)
	if _, ok := m.docs[id]; ok {
		return couch.ErrConflict
	}
	m.docs[id] = jsv.CloneMap(d)
	return nil
}

func (m *memPurge) live() []string {
	var out []string
	for id, d := range m.docs {
		if strings.HasPrefix(id, "purged:") && d["_deleted"] != true {
			out = append(out, strings.TrimPrefix(id, "purged:"))
		}
	}
	sort.Strings(out)
	return out
}

func (s *memServer) Source(context.Context) (Source, error) { return memSource{s}, nil }
func (s *memServer) Users(context.Context) ([]map[string]any, error) {
	return s.users, nil
}
func (s *memServer) PurgeDB(_ context.Context, hash string) (PurgeDB, error) {
	if s.purged[hash] == nil {
		s.purged[hash] = newMemPurge()
	}
	return s.purged[hash], nil
}
func (s *memServer) Sentinel() PurgeDB { return s.logs }

type memSource struct{ s *memServer }

func (m memSource) filter(after string, limit int, keep func(couch.Doc) bool) []couch.Doc {
	var out []couch.Doc
	for _, d := range m.s.docs {
		if d["_id"].(string) > after && keep(d) {
			out = append(out, jsv.CloneMap(d))
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

func (m memSource) Contacts(_ context.Context, after string, limit int) ([]couch.Doc, error) {
	return m.filter(after, limit, func(d couch.Doc) bool { return ContactTypes[jsv.String(d["type"])] }), nil
}

func (m memSource) RecordsBySubject(_ context.Context, subjects []string, limit int) ([]couch.Doc, error) {
	want := map[string]bool{}
	for _, s := range subjects {
		want[s] = true
	}
	return m.filter("", limit, func(d couch.Doc) bool { return d["type"] == "data_record" && want[ReplicationSubject(d)] }), nil
}

func (m memSource) Unallocated(_ context.Context, after string, limit int) ([]couch.Doc, error) {
	return m.filter(after, limit, func(d couch.Doc) bool { return d["type"] == "data_record" && ReplicationSubject(d) == "" }), nil
}

func (m memSource) FinalTasks(_ context.Context, upTo string, after []any, limit int) ([]couch.Row, error) {
	var out []couch.Row
	for _, d := range m.s.docs {
		end, ok := jsv.Map(d["emission"])["endDate"].(string)
		if d["type"] == "task" && finalStates[jsv.String(d["state"])] && ok && end <= upTo {
			out = append(out, couch.Row{ID: d["_id"].(string), Key: []any{end, d["_id"]}})
		}
	}
	return out, nil
}

func (m memSource) IDs(_ context.Context, from, to, after string, limit int) ([]string, error) {
	var out []string
	for _, d := range m.s.docs {
		id := d["_id"].(string)
		if id >= from && id <= to && id > after {
			out = append(out, id)
		}
	}
	return out, nil
}

func newMemServer(docs ...couch.Doc) *memServer {
	sort.Slice(docs, func(i, j int) bool { return docs[i]["_id"].(string) < docs[j]["_id"].(string) })
	return &memServer{docs: docs, purged: map[string]*memPurge{}, logs: newMemPurge()}
}

func testEnv(settings map[string]any, now time.Time) *jobs.Env {
	return &jobs.Env{Settings: config.NewSettings(settings), Location: time.UTC, Log: zerolog.Nop(),
		JS: jsexpr.NewSandbox(jsexpr.Options{Timeout: time.Second}), Clock: func() time.Time { return now }}
}

func TestRunOnce(t *testing.T) {
	now := time.Date(2024, 5, 6, 2, 0, 0, 0, time.UTC)
	srv := newMemServer(
		couch.Doc{"_id": "clinic1", "type": "clinic"},
		couch.Doc{"_id": "p1", "type": "person", "patient_id": "11111", "parent": map[string]any{"_id": "clinic1"}},
		couch.Doc{"_id": "r1", "type": "data_record", "form": "V", "fields": map[string]any{"patient_id": "11111"}, "old": true},
		couch.Doc{"_id": "r2", "type": "data_record", "form": "V", "fields": map[string]any{"patient_uuid": "p1"}},
		couch.Doc{"_id": "r3", "type": "data_record", "form": "V", "fields": map[string]any{"patient_id": "nobody"}, "old": true},
		couch.Doc{"_id": "u1", "type": "data_record", "form": "V", "fields": map[string]any{}, "old": true},
		couch.Doc{"_id": "m1", "type": "data_record", "sms_message": true, "contact": map[string]any{"_id": "clinic1"}, "old": true},
		couch.Doc{"_id": "t1", "type": "task", "state": "Completed", "emission": map[string]any{"endDate": "2024-01-01"}},
		couch.Doc{"_id": "t2", "type": "task", "state": "Completed", "emission": map[string]any{"endDate": "2024-04-01"}},
		couch.Doc{"_id": "target~2023-10~chw", "type": "target"},
		couch.Doc{"_id": "target~2023-11~chw", "type": "target"},
	)
	srv.users = []map[string]any{{"name": "chw", "roles": []any{"chw"}}, {"name": "admin", "roles": []any{"admin"}}}
	fn := "function (user, contact, reports, messages) { return reports.concat(messages).filter(function (d) { return d.old; }).map(function (d) { return d._id; }).concat(['clinic1-not-in-group']); }"
	env := testEnv(map[string]any{"purge": map[string]any{"fn": fn}}, now)
	if err := RunOnce(context.Background(), srv, env); err != nil {
		t.Fatal(err)
	}
	db := srv.purged["dc6aef2f5bbad17a51df3cbf5eea105a"]
	if db == nil {
		t.Fatalf("no purge db: %v", srv.purged)
	}
	want := "m1 r1 t1 target~2023-10~chw u1"
	if got := strings.Join(db.live(), " "); got != want {
		t.Errorf("purged %q, want %q", got, want)
	}
	if len(srv.logs.docs) != 1 {
		t.Errorf("purge logs: %v", srv.logs.docs)
	}
	// A rerun with the same decisions writes nothing; a changed function
	// un-purges what it no longer returns.
	writes := db.writes
	env = testEnv(map[string]any{"purge": map[string]any{"fn": fn}}, now.Add(time.Second))
	if err := RunOnce(context.Background(), srv, env); err != nil {
		t.Fatal(err)
	}
	if db.writes != writes {
		t.Errorf("a rerun wrote %d purge records", db.writes-writes)
	}
	env = testEnv(map[string]any{"purge": map[string]any{"fn": "function () { return []; }"}}, now.Add(2*time.Second))
	if err := RunOnce(context.Background(), srv, env); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(db.live(), " "); got != "t1 target~2023-10~chw" {
		t.Errorf("after the change: purged %q", got)
	}
}

func TestRunOnceFailureWritesErrorLog(t *testing.T) {
	srv := newMemServer(couch.Doc{"_id": "p1", "type": "person"})
	srv.users = []map[string]any{{"name": "chw", "roles": []any{"chw"}}}
	env := testEnv(map[string]any{"purge": map[string]any{"fn": "function () { throw new Error('boom'); }"}}, time.UnixMilli(1714960800123))
	if err := RunOnce(context.Background(), srv, env); err != nil {
		t.Fatal(err)
	}
	d := srv.logs.docs["purgelog:error:1714960800123"]
	if d == nil || !strings.Contains(jsv.String(d["error"]), "boom") {
		t.Fatalf("logs %v", srv.logs.docs)
	}
}

// synthServer generates a large main db on demand (nothing of it is held
// in memory), to measure a run's throughput and memory: contacts
// p0000000… each with perContact reports, half of them old.
type synthServer struct {
	contacts, perContact int
	purge                *countPurge
}

type countPurge struct{ writes int }

func (c *countPurge) AllDocs(context.Context, map[string]any) ([]couch.Row, error) { return nil, nil }
func (c *countPurge) BulkDocs(_ context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	c.writes += len(docs)
	return nil, nil
}
func (c *countPurge) Put(context.Context, couch.Doc) error { return nil }

func (s *synthServer) Source(context.Context) (Source, error) { return s, nil }
func (s *synthServer) Users(context.Context) ([]map[string]any, error) {
	return []map[string]any{{"roles": []any{"chw"}}}, nil
}
func (s *synthServer) PurgeDB(context.Context, string) (PurgeDB, error) { return s.purge, nil }
func (s *synthServer) Sentinel() PurgeDB                                { return s.purge }

func (s *synthServer) Contacts(_ context.Context, after string, limit int) ([]couch.Doc, error) {
	start := 0
	if after != "" {
		n, _ := strconv.Atoi(strings.TrimPrefix(after, "p"))
		start = n + 1
	}
	var out []couch.Doc
	for i := start; i < s.contacts && len(out) < limit; i++ {
		out = append(out, couch.Doc{"_id": fmt.Sprintf("p%07d", i), "type": "person", "name": "Person",
			"patient_id": fmt.Sprintf("%07d", i), "parent": map[string]any{"_id": "clinic", "parent": map[string]any{"_id": "hc"}}})
	}
	return out, nil
}

func (s *synthServer) RecordsBySubject(_ context.Context, subjects []string, limit int) ([]couch.Doc, error) {
	var out []couch.Doc
	for _, sub := range subjects {
		if strings.HasPrefix(sub, "p") {
			continue // reports name the shortcode
		}
		for j := range s.perContact {
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
			out = append(out, couch.Doc{"_id": fmt.Sprintf("r%s-%d", sub, j), "type": "data_record", "form": "V",
				"reported_date": float64(1e12 + j*1e9), "fields": map[string]any{"patient_id": sub, "temp": 37.5},
				"contact": map[string]any{"_id": "chw", "parent": map[string]any{"_id": "clinic"}}})
		}
	}
	return out, nil
}

func (s *synthServer) Unallocated(context.Context, string, int) ([]couch.Doc, error) { return nil, nil }
func (s *synthServer) FinalTasks(context.Context, string, []any, int) ([]couch.Row, error) {
	return nil, nil
}
func (s *synthServer) IDs(context.Context, string, string, string, int) ([]string, error) {
	return nil, nil
}

// BenchmarkPurgeRun measures docs examined per second on a generated
// database of PURGE_BENCH_DOCS docs (default 100 000; 1 contact per 10
// docs), one role set, and the peak RSS of the process (VmHWM).
func BenchmarkPurgeRun(b *testing.B) {
	total := 100000
	if v, err := strconv.Atoi(os.Getenv("PURGE_BENCH_DOCS")); err == nil && v > 0 {
		total = v
	}
	fn := "function (u, c, reports) { return reports.filter(function (r) { return r.reported_date < 1005000000000; }).map(function (r) { return r._id; }); }"
	var examined int
	start := time.Now()
	for b.Loop() {
		srv := &synthServer{contacts: total / 10, perContact: 9, purge: &countPurge{}}
		env := testEnv(map[string]any{"purge": map[string]any{"fn": fn}}, time.Now())
		if err := RunOnce(context.Background(), srv, env); err != nil {
			b.Fatal(err)
		}
		examined += total
		if srv.purge.writes < total/2-total/10 {
			b.Fatalf("only %d purge records written", srv.purge.writes)
		}
	}
	b.ReportMetric(float64(examined)/time.Since(start).Seconds(), "docs/s")
	if hwm := peakRSS(); hwm > 0 {
		b.ReportMetric(float64(hwm)/1024, "peak-RSS-MiB")
	}
}

// peakRSS is the process's peak resident set in KiB (Linux), 0 elsewhere.
func peakRSS() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return 0
}

// TestTooManyRecordsSkipsTheContact: a batch with 20 000 records or more
// is retried with half as many contacts, and a contact alone with that many
// is skipped and listed in the purge log.
func TestTooManyRecordsSkipsTheContact(t *testing.T) {
	srv := &synthServer{contacts: 3, perContact: 25000, purge: &countPurge{}}
	logs := &recordPurge{}
	env := testEnv(map[string]any{"purge": map[string]any{"fn": "function () { return []; }"}}, time.UnixMilli(1000))
	if err := RunOnce(context.Background(), logSink{srv, logs}, env); err != nil {
		t.Fatal(err)
	}
	if len(logs.docs) != 1 {
		t.Fatalf("logs %v", logs.docs)
	}
	if got := jsonString(logs.docs[0]["skipped_contacts"]); got != `["p0000000","p0000001","p0000002"]` {
		t.Errorf("skipped_contacts = %s", got)
	}
}

type recordPurge struct {
	countPurge
	docs []couch.Doc
}

func (r *recordPurge) Put(_ context.Context, d couch.Doc) error {
	r.docs = append(r.docs, d)
	return nil
}

// logSink is a Server whose sentinel db records the purge logs.
type logSink struct {
	*synthServer
	logs *recordPurge
}

func (l logSink) Sentinel() PurgeDB { return l.logs }

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
