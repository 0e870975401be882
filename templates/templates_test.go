package templates

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The golden cases under testdata/render were produced with mustache.js
// 4.2.0 (escaping off), moment 2.31.0 and bikram-sambat 1.8.1 under node,
// with TZ set to the case's tz, and the helpers of messages.md §4.2. Do not regenerate existing wants with
// -update: it writes this package's output, and is only meant to give a new
// case a first value, to be checked against the reference.
var update = flag.Bool("update", false, "rewrite want/want_error of testdata/render cases from this package's output")

type goldenCase struct {
	Name     string           `json:"name"`
	Template string           `json:"template"`
	Layers   []map[string]any `json:"layers"`
	Options  struct {
		DateFormat         string `json:"date_format,omitempty"`
		DatetimeFormat     string `json:"datetime_format,omitempty"`
		Locale             string `json:"locale,omitempty"`
		DefaultCountryCode string `json:"default_country_code,omitempty"`
		TZ                 string `json:"tz,omitempty"`
	} `json:"options"`
	Want      *string `json:"want,omitempty"`
	WantError string  `json:"want_error,omitempty"`
}

func mustLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load location %q: %v", name, err)
	}
	return loc
}

func TestRenderGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "render", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var c goldenCase
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			opts := Options{
				DateFormat:         c.Options.DateFormat,
				DateTimeFormat:     c.Options.DatetimeFormat,
				Locale:             c.Options.Locale,
				DefaultCountryCode: c.Options.DefaultCountryCode,
				Location:           mustLocation(t, c.Options.TZ),
			}
			got, err := Render(c.Template, c.Layers, opts)
			if *update {
				c.Want, c.WantError = nil, ""
				if err != nil {
					c.WantError = err.Error()
				} else {
					c.Want = &got
				}
				out, _ := json.MarshalIndent(c, "", "  ")
				if err := os.WriteFile(file, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			switch {
			case c.WantError != "":
				if err == nil || err.Error() != c.WantError {
					t.Fatalf("Render(%q) error = %v, want %q (output %q)", c.Template, err, c.WantError, got)
				}
			case c.Want != nil:
				if err != nil {
					t.Fatalf("Render(%q) error: %v", c.Template, err)
				}
				if got != *c.Want {
					t.Fatalf("Render(%q)\n got %q\nwant %q", c.Template, got, *c.Want)
				}
			default:
				t.Fatal("case has neither want nor want_error")
			}
		})
	}
}

func TestRenderSemantics(t *testing.T) {
	ctx := map[string]any{
		"name":    "Mary",
		"n":       1234567.0,
		"i":       42, // Go ints are accepted too
		"sp":      " ",
		"list":    []any{map[string]any{"x": "a"}, map[string]any{"x": "b"}},
		"strs":    []string{"p", "q"},
		"smap":    map[string]string{"k": "v"},
		"rows":    []map[string]any{{"x": 1}},
		"nested":  map[string]any{"list": []any{[]any{1.0, 2.0}}},
		"lmp":     1714557600000.0,
		"phone":   "+254712345678",
		"nothing": nil,
	}
	opts := Options{DateFormat: "D MMM, YYYY", DateTimeFormat: "DD-MMM-YYYY HH:mm:ss", Locale: "en", DefaultCountryCode: "254", Location: time.UTC}
	tests := []struct{ name, tmpl, want string }{
		{"no escaping", `{{x}}{{{x}}}{{&x}}`, `<&>"'<&>"'<&>"'`},
		{"js number", "{{n}}", "1234567"},
		{"go int", "{{i}}", "42"},
		{"index path", "{{list.1.x}}", "b"},
		{"index out of range", "[{{list.5.x}}]", "[]"},
		{"non-canonical index", "[{{list.01.x}}]", "[]"},
		{"nested arrays", "{{nested.list.0.1}}", "2"},
		{"go slices and maps", "{{strs.1}}{{smap.k}}{{rows.0.x}}{{#strs}}<{{.}}>{{/strs}}", "qv1<p><q>"},
		{"missing", "[{{missing}}{{name.first}}{{nothing.x}}]", "[]"},
		{"space is truthy", "{{#sp}}yes{{/sp}}", "yes"},
		{"iteration", "{{#list}}{{x}}{{name}},{{/list}}", "aMary,bMary,"},
		{"inverted on missing", "{{^missing}}none{{/missing}}", "none"},
		{"date", "{{#date}}{{lmp}}{{/date}}", "1 May, 2024"},
		{"datetime", "{{#datetime}}{{lmp}}{{/datetime}}", "01-May-2024 10:00:00"},
		{"helpers are truthy for inverted", "[{{^date}}x{{/date}}]", "[]"},
		{"helper as a value prints nothing", "[{{date}}]", "[]"},
		{"local phone", "{{#local_phone}}{{phone}}{{/local_phone}}", "712345678"},
		{"bikram", "{{#bikram_sambat_date}}2017-03-28{{/bikram_sambat_date}}", "१५ चैत २०७३"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			layers := []map[string]any{{"x": `<&>"'`}, ctx}
			got, err := Render(tc.tmpl, layers, opts)
			if err != nil {
				t.Fatalf("Render(%q): %v", tc.tmpl, err)
			}
			if got != tc.want {
				t.Fatalf("Render(%q) = %q, want %q", tc.tmpl, got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct{ tmpl, wantErr string }{
		{"Hello {{name}}", ""},
		{"{{#a}}{{#b}}x{{/b}}{{/a}}", ""},
		{"{{=<% %>=}}<%#a%>x<%/a%>", ""},
		{"{{#a}}x", `Unclosed section "a" at 7`},
		{"{{#a}}{{/b}}", `Unclosed section "a" at 6`},
		{"{{/a}}", `Unopened section "a" at 0`},
		{"{{name", "Unclosed tag at 6"},
		{"{{{name}}", "Unclosed tag at 9"},
		{"{{=a=}}", "Invalid tags: a"},
		{"é{{#a}}", `Unclosed section "a" at 7`}, // positions count UTF-16 units, like JS
	}
	for _, tc := range tests {
		err := Check(tc.tmpl)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("Check(%q) = %v, want nil", tc.tmpl, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("Check(%q) = %v, want %q", tc.tmpl, err, tc.wantErr)
		}
		if _, rerr := Render(tc.tmpl, nil, Options{}); rerr == nil || rerr.Error() != tc.wantErr {
			t.Errorf("Render(%q) error = %v, want %q", tc.tmpl, rerr, tc.wantErr)
		}
	}
}

func TestFormatMoment(t *testing.T) {
	may1 := time.Date(2024, time.May, 1, 10, 0, 0, 0, time.UTC)
	dec29 := time.Date(2024, time.December, 29, 23, 5, 9, 7e6, time.UTC)
	ktm := time.FixedZone("NPT", 5*3600+45*60)
	tests := []struct {
		t              time.Time
		layout, locale string
		want           string
	}{
		{may1, "D MMM, YYYY", "en", "1 May, 2024"},
		{may1, "DD-MMM-YYYY HH:mm:ss", "en", "01-May-2024 10:00:00"},
		{may1, "YYYY/MM/DD [at] HH:mm ddd", "en", "2024/05/01 at 10:00 Wed"},
		{may1, "Do MMMM YYYY", "en", "1st May 2024"},
		{may1, "dddd D MMMM YYYY", "fr", "mercredi 1 mai 2024"},
		{may1, "Do MMMM", "fr", "1er mai"},
		{may1, "D MMM YYYY", "es", "1 may. 2024"},
		{may1, "DD-MMM-YYYY", "es", "01-may-2024"},
		{may1, "dddd D MMMM", "sw", "Jumatano 1 Mei"},
		{may1, "D MMMM YYYY", "ne", "१ मई २०२४"},
		{may1, "D MMMM YYYY", "hi", "१ मई २०२४"},
		{may1, "D MMMM YYYY", "xx", "1 May 2024"},
		{may1, "LLLL", "en", "Wednesday, May 1, 2024 10:00 AM"},
		{may1, "llll", "en", "Wed, May 1, 2024 10:00 AM"},
		{may1, "LL", "es", "1 de mayo de 2024"},
		{may1, "", "en", "2024-05-01T10:00:00+00:00"},
		{may1.In(ktm), "HH:mm Z ZZ", "en", "15:45 +05:45 +0545"},
		{dec29, "gggg-[W]ww GGGG-[W]WW E e", "en", "2025-W01 2024-W52 7 0"},
		{dec29, "h:mm:ss.SSS a k", "en", "11:05:09.007 pm 23"},
		{dec29, "X x", "en", "1735513509 1735513509007"},
		{dec29, `[today] \Y YYYY`, "en", "today Y 2024"},
		{dec29, "YYYY\nMM", "en", "202412"},              // moment's tokenizer never matches a line break
		{dec29, "[unclosed", "en", "[unc12/29/2024o900"}, // no closing bracket: letters are tokens again
	}
	for _, tc := range tests {
		if got := FormatMoment(tc.t, tc.layout, tc.locale); got != tc.want {
			t.Errorf("FormatMoment(%v, %q, %q) = %q, want %q", tc.t, tc.layout, tc.locale, got, tc.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	ny := mustLocation(t, "America/New_York")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return v
	}
	tests := []struct {
		in   string
		loc  *time.Location
		want time.Time // zero: invalid
	}{
		{"1714557600000", time.UTC, utc("2024-05-01T10:00:00Z")},
		{"  1714557600000\n", time.UTC, utc("2024-05-01T10:00:00Z")},
		{"1e3", time.UTC, utc("1970-01-01T00:00:00.001Z")}, // parseInt reads "1"
		{"", time.UTC, time.Time{}},
		{"   ", time.UTC, time.Time{}},
		{"Infinity", time.UTC, time.Time{}},
		{"2024-05-01", ny, utc("2024-05-01T04:00:00Z")}, // date-only is local midnight
		{"2024-05-01T10:00:00Z", ny, utc("2024-05-01T10:00:00Z")},
		{"2024-05-01T10:00:00.1239+05:30", time.UTC, utc("2024-05-01T04:30:00.123Z")},
		{"2024-05-01 10:00", time.UTC, utc("2024-05-01T10:00:00Z")},
		{"2024-05-01T24:00", time.UTC, utc("2024-05-02T00:00:00Z")},
		{"2024-W18-3", time.UTC, utc("2024-05-01T00:00:00Z")},
		{"2024-122", time.UTC, utc("2024-05-01T00:00:00Z")},
		{"2024-02-30", time.UTC, time.Time{}},
		{"2024-05-01T10:00:00+15:00", time.UTC, time.Time{}},
		{"Wed, 01 May 2024 10:00:00 GMT", time.UTC, utc("2024-05-01T10:00:00Z")},
		{"Thu, 01 May 2024 10:00:00 GMT", time.UTC, time.Time{}}, // wrong weekday
		{"May 1, 2024", time.UTC, utc("2024-05-01T00:00:00Z")},
		{"1 May 2024 10:00 pm", time.UTC, utc("2024-05-01T22:00:00Z")},
		{"05/01/2024", time.UTC, utc("2024-05-01T00:00:00Z")},
		{"Tue May 01 2024 10:00:00 GMT+0530 (IST)", time.UTC, utc("2024-05-01T04:30:00Z")},
		{"May 1", time.UTC, utc("2001-05-01T00:00:00Z")}, // V8 defaults the year to 2001
		{"/Date(1714557600000)/", time.UTC, utc("2024-05-01T10:00:00Z")},
		{"2024-03-10T02:30", ny, utc("2024-03-10T07:30:00Z")}, // DST gap: read with the earlier offset
		{"2024-11-03T01:30", ny, utc("2024-11-03T05:30:00Z")}, // repeated hour: the earlier instant
		{"not a date", time.UTC, time.Time{}},
		{"1 mai 2024", time.UTC, time.Time{}},
	}
	for _, tc := range tests {
		got, ok := ParseDate(tc.in, tc.loc)
		if tc.want.IsZero() {
			if ok {
				t.Errorf("ParseDate(%q) = %v, want invalid", tc.in, got)
			}
			continue
		}
		if !ok || !got.Equal(tc.want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
		if ok && got.Location() != tc.loc {
			t.Errorf("ParseDate(%q) location = %v, want %v", tc.in, got.Location(), tc.loc)
		}
	}
	if got, ok := ParseDate("2024-05-01", nil); !ok || got.Location() != time.Local {
		t.Errorf("ParseDate with nil location = %v, %v; want time.Local", got, ok)
	}
}

func TestBikramSambat(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		t    time.Time
		want string
	}{
		{day(2017, time.March, 28), "१५ चैत २०७३"},  // CHT documentation example
		{day(1943, time.April, 14), "१ बैशाख २०००"}, // anchor: 1 Baisakh 2000 BS
		{day(1913, time.April, 13), "१ बैशाख १९७०"}, // first day of the table
		{day(2024, time.June, 15), "१ असार २०८१"},   // corrected in bikram-sambat 1.8.1
		{day(2034, time.April, 13), "३० चैत २०९०"},  // last day of the table
		{time.Date(2017, time.March, 28, 23, 59, 0, 0, time.FixedZone("NPT", 20700)), "१५ चैत २०७३"},
		{day(1913, time.April, 12), ""},
		{day(2034, time.April, 14), ""},
	}
	for _, tc := range tests {
		if got := BikramSambat(tc.t); got != tc.want {
			t.Errorf("BikramSambat(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
	// The anchor is where the table says: 1999 BS ends the day before.
	if s := BikramSambat(day(1943, time.April, 13)); s != "३१ चैत १९९९" {
		t.Errorf("day before the anchor = %q", s)
	}
}

func TestRenderBounded(t *testing.T) {
	list := make([]any, 100)
	for i := range list {
		list[i] = float64(i)
	}
	tmpl := strings.Repeat("{{#l}}", 5) + "x" + strings.Repeat("{{/l}}", 5) // 10^10 iterations
	_, err := Render(tmpl, []map[string]any{{"l": list}}, Options{Location: time.UTC})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// TestRenderConcurrent renders shared templates from many goroutines: the
// parse cache and lazily parsed helper sections must be safe (run with -race).
func TestRenderConcurrent(t *testing.T) {
	tmpl := "Hi {{name}} {{#date}}{{lmp}}{{/date}} {{#bikram_sambat_date}}{{lmp}}{{/bikram_sambat_date}}"
	layers := []map[string]any{{"name": "Mary", "lmp": 1714557600000.0}}
	opts := Options{DateFormat: "D MMM, YYYY", Location: time.UTC}
	want, err := Render(tmpl, layers, opts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if got, err := Render(tmpl, layers, opts); err != nil || got != want {
					t.Errorf("got %q, %v; want %q", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		"Hello {{name}}", "{{#list}}[{{.}}]{{/list}}", "{{^empty}}none{{/empty}}", "{{a.0.b}}",
		"{{#date}}{{lmp}}{{/date}}", "{{#bikram_sambat_date}}{{lmp}}{{/bikram_sambat_date}}",
		"{{#local_phone}}{{phone}}{{/local_phone}}", "{{=<% %>=}}<%name%>", "{{#a}}", "{{/a}}", "{{name",
		"  {{#t}}\n  x\n  {{/t}}\n", "{{{name}}}{{&name}}{{! c }}{{>p}}", "{{#list}}{{#date}}{{.}}{{/date}}{{/list}}",
	} {
		f.Add(seed, "D MMM, YYYY")
	}
	// A smaller work bound keeps every execution fast: the fuzzer minimises
	// each new input by re-running it many times, and slow inputs would
	// stall it past -fuzztime.
	saved := maxVisits
	maxVisits = 1 << 13
	f.Cleanup(func() { maxVisits = saved })
	layers := []map[string]any{{
		"name":  "Mary",
		"list":  []any{1.0, "a", map[string]any{"b": true}, nil},
		"empty": []any{},
		"a":     []any{map[string]any{"b": "x"}},
		"lmp":   1714557600000.0,
		"phone": "+254712345678",
		"t":     true,
		"obj":   map[string]any{"x": map[string]any{"y": 1.5}},
	}}
	f.Fuzz(func(t *testing.T, tmpl, layout string) {
		if len(tmpl)+len(layout) > 1024 {
			return // large inputs add little and make the fuzzer's minimisation slow
		}
		opts := Options{DateFormat: layout, DateTimeFormat: layout, Locale: "fr", DefaultCountryCode: "254", Location: time.UTC}
		out, err := Render(tmpl, layers, opts)
		if perr := Check(tmpl); perr != nil && err == nil {
			t.Fatalf("Check failed (%v) but Render succeeded", perr)
		}
		if err == nil && len(out) > maxOutput+len(tmpl)*4 {
			t.Fatalf("output of %d bytes escaped the bound", len(out))
		}
		_, _ = ParseDate(tmpl, time.UTC)
		_ = FormatMoment(time.Unix(0, 0), layout, "ne")
	})
}

func BenchmarkRender(b *testing.B) {
	tmpl := "Thank you {{contact.name}} for registering {{patient_name}}. Their ID is {{patient_id}}. Next visit {{#date}}{{due}}{{/date}}"
	layers := []map[string]any{
		{"patient_name": "Paula", "patient_id": "55501"},
		{"contact": map[string]any{"name": "Carol CHW", "phone": "+254712000010"}, "due": 1714557600000.0},
	}
	opts := Options{DateFormat: "D MMM, YYYY", Locale: "en", Location: time.UTC}
	want := "Thank you Carol CHW for registering Paula. Their ID is 55501. Next visit 1 May, 2024"
	if got, err := Render(tmpl, layers, opts); err != nil || got != want {
		b.Fatalf("got %q, %v", got, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(tmpl, layers, opts); err != nil {
			b.Fatal(err)
		}
	}
}
