package couch

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"testing"
)

func TestSnapshotRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		s    snapshot
	}{
		{"empty", snapshot{Seq: "0", DB: "medic", IDs: []uint64{}, Used: []uint64{}, Keys: []keyPair{}}},
		{"numeric seq", snapshot{Seq: "1234", DB: "medic", IDs: []uint64{1, 2, 1 << 63}, Used: []uint64{7}, Keys: []keyPair{{5, "a"}, {5, "b"}, {9, "a"}}}},
		{"opaque seq, unicode id", snapshot{Seq: "12-g1AAAAB4eJzLYWBgYMpgTmHgz8tPSTV0MDQy", DB: "medic-x", IDs: []uint64{3}, Used: []uint64{}, Keys: []keyPair{{1, "é-ü"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := c.s.encode(&buf); err != nil {
				t.Fatal(err)
			}
			if buf.Len() > c.s.size() {
				t.Errorf("encoded %d bytes, size() said %d", buf.Len(), c.s.size())
			}
			got, err := decodeSnapshot(&buf, int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.s) {
				t.Errorf("decoded %+v, want %+v", got, c.s)
			}
		})
	}
}

func TestSnapshotCorrupt(t *testing.T) {
	var good bytes.Buffer
	if err := (snapshot{Seq: "42", DB: "medic", IDs: []uint64{1, 2, 3}, Used: []uint64{4}, Keys: []keyPair{{8, "c"}}}).encode(&good); err != nil {
		t.Fatal(err)
	}
	b := good.Bytes()
	flip := func(i int) []byte {
		c := slices.Clone(b)
		c[i] ^= 0x40
		return c
	}
	var unsorted bytes.Buffer
	_ = snapshot{Seq: "1", DB: "m", IDs: []uint64{2, 1}}.encode(&unsorted)
	var future bytes.Buffer
	future.WriteString(snapshotMagic)
	future.WriteByte(SnapshotVersion + 1)
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not a snapshot", []byte("{\"json\": true}")},
		{"another version", future.Bytes()},
		{"truncated", b[:len(b)-5]},
		{"checksum missing", b[:len(b)-4]},
		{"a flipped bit in the ids", flip(len(snapshotMagic) + 12)},
		{"a flipped bit in the checksum", flip(len(b) - 1)},
		{"trailing bytes", append(slices.Clone(b), 0)},
		{"hashes out of order", unsorted.Bytes()},
		{"huge count", append([]byte(snapshotMagic+"\x01\x00\x00"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := decodeSnapshot(bytes.NewReader(c.data), int64(len(c.data))); !errors.Is(err, errSnapshot) {
				t.Errorf("err = %v, want errSnapshot", err)
			}
		})
	}
}

// TestSnapshotRestoresIndex: an index loaded from its snapshot answers as
// the index did, and catches up from the snapshot's sequence.
func TestSnapshotRestoresIndex(t *testing.T) {
	x := NewIndex()
	docs := []Doc{
		{"_id": "a", "type": "person", "phone": "+1", "patient_id": "111"},
		{"_id": "b", "type": "clinic", "phone": "+1", "place_id": "222", "rc_code": "x9"},
		{"_id": "r", "type": "data_record", "case_id": "333"},
		{"_id": "gone", "type": "person", "phone": "+3"},
	}
	for _, d := range docs {
		x.Observe(d)
	}
	x.Remove("gone")
	x.SetSeq("17")
	var buf bytes.Buffer
	x.mu.Lock()
	err := x.take("medic").encode(&buf)
	x.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	s, err := decodeSnapshot(&buf, int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	y := NewIndex()
	y.load(s)
	y.ready = true
	if y.catchFrom != "17" {
		t.Errorf("catchFrom = %q", y.catchFrom)
	}
	cases := []struct {
		key  string
		want []string
	}{
		{"p:+1", []string{"a", "b"}}, {"s:111", []string{"a"}}, {"s:222", []string{"b"}}, {"e:X9", []string{"b"}}, {"p:+3", nil},
	}
	for _, c := range cases {
		if got := y.candidates(c.key); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.key, got, c.want)
		}
	}
	if used := y.Used([]string{"111", "222", "333", "444"}); !reflect.DeepEqual(used, map[string]bool{"111": true, "222": true, "333": true}) {
		t.Errorf("used = %v", used)
	}
	for id, want := range map[string]bool{"a": true, "r": true, "gone": true, "never": false} {
		if y.MayExist(id) != want {
			t.Errorf("MayExist(%s) = %v", id, !want)
		}
	}
	// A loaded contact that changes drops its old keys (keysOf restored).
	y.Observe(Doc{"_id": "b", "type": "clinic", "phone": "+2"})
	if got := y.candidates("p:+1"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("p:+1 after b changed = %v", got)
	}
	if got := y.candidates("e:X9"); got != nil {
		t.Errorf("e:X9 after b changed = %v", got)
	}
}

func TestHashSet(t *testing.T) {
	s := newHashSet()
	var want []uint64
	for i := uint64(0); i < 3*minRecent+17; i++ {
		h := keyHash(strconv.FormatUint(i, 10))
		s.add(h)
		s.add(h) // twice: still one member
		want = append(want, h)
	}
	if s.len() != len(want) {
		t.Fatalf("len = %d, want %d", s.len(), len(want))
	}
	for _, h := range want {
		if !s.has(h) {
			t.Fatalf("%d missing", h)
		}
	}
	if s.has(keyHash("absent")) {
		t.Error("absent member found")
	}
	slices.Sort(want)
	if got := s.members(); !slices.Equal(got, want) {
		t.Error("members not the sorted set")
	}
}

// BenchmarkIndexBytesPerDoc: the index's memory per doc id, for a database
// like live.py's (a tenth persons with a phone and a patient_id, the rest
// reports with a patient_id): reported as B/doc.
func BenchmarkIndexBytesPerDoc(b *testing.B) {
	const n = 200000
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		x := NewIndex()
		for j := 0; j < n; j++ {
			if j%10 == 0 {
				x.Observe(Doc{"_id": "person-" + strconv.Itoa(j), "type": "person", "phone": "+2557" + strconv.Itoa(j), "patient_id": "9" + strconv.Itoa(j)})
			} else {
				x.Observe(Doc{"_id": "report-" + strconv.Itoa(j), "type": "data_record", "patient_id": "8" + strconv.Itoa(j)})
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/doc")
		runtime.KeepAlive(x)
	}
}

// TestCatchUpBatch: a loaded snapshot plus the changes read from its seq,
// some of them also observed by the feed meanwhile (which wins).
func TestCatchUpBatch(t *testing.T) {
	base := snapshot{Seq: "10", DB: "medic"}
	{
		x := NewIndex()
		x.Observe(Doc{"_id": "a", "type": "person", "phone": "+1", "patient_id": "111"})
		x.Observe(Doc{"_id": "b", "type": "person", "phone": "+2"})
		x.mu.Lock()
		base = x.take("medic")
		x.mu.Unlock()
		base.Seq = "10"
	}
	person := func(id, phone string) Doc { return Doc{"_id": id, "type": "person", "phone": phone} }
	cases := []struct {
		name    string
		feed    []Doc // observed by the feed before the catch-up reads its batch
		changes []Change
		phones  map[string][]string
		used    []string
		mayNot  []string
	}{
		{"nothing changed", nil, nil,
			map[string][]string{"+1": {"a"}, "+2": {"b"}}, []string{"111"}, []string{"z"}},
		{"new contact, deleted contact, edited contact",
			nil,
			[]Change{{ID: "c", Doc: person("c", "+1")}, {ID: "b", Deleted: true}, {ID: "a", Doc: Doc{"_id": "a", "type": "person", "phone": "+3", "patient_id": "111"}}},
			map[string][]string{"+1": {"c"}, "+2": nil, "+3": {"a"}}, []string{"111"}, nil},
		{"a report's shortcode, a design doc ignored",
			nil,
			[]Change{{ID: "r", Doc: Doc{"_id": "r", "type": "data_record", "case_id": "c-9"}}, {ID: "_design/x", Doc: Doc{"_id": "_design/x", "patient_id": "777"}}},
			map[string][]string{"+1": {"a"}}, []string{"111", "c-9"}, []string{"_design/x"}},
		{"the feed's fresher version wins over the catch-up's",
			[]Doc{person("b", "+5")},
			[]Change{{ID: "b", Doc: person("b", "+2")}},
			map[string][]string{"+2": nil, "+5": {"b"}}, nil, nil},
		{"a deletion read after the feed saw the doc again is ignored",
			[]Doc{person("b", "+6")},
			[]Change{{ID: "b", Deleted: true}},
			map[string][]string{"+6": {"b"}}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := NewIndex()
			x.load(snapshot{Seq: base.Seq, DB: base.DB, IDs: slices.Clone(base.IDs), Used: slices.Clone(base.Used), Keys: base.Keys})
			x.building, x.fresh = true, map[string]struct{}{}
			for _, d := range c.feed {
				x.Observe(d)
			}
			x.catchUpBatch(c.changes)
			x.building, x.ready = false, true
			for phone, want := range c.phones {
				if got := x.candidates(phoneKey + phone); !reflect.DeepEqual(got, want) {
					t.Errorf("phone %s: %v, want %v", phone, got, want)
				}
			}
			used := x.Used(c.used)
			for _, code := range c.used {
				if !used[code] {
					t.Errorf("shortcode %s not taken", code)
				}
			}
			for _, id := range c.mayNot {
				if x.MayExist(id) {
					t.Errorf("%s may exist", id)
				}
			}
		})
	}
}
