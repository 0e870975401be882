package recur

import (
	"strings"
	"testing"
	"time"
)

// 2024-05-06 is a Monday.
func at(loc *time.Location, y int, m time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, m, d, h, mi, s, 0, loc)
}

func TestLatest(t *testing.T) {
	utc := time.UTC
	eat := time.FixedZone("EAT", 3*3600)
	mon9 := at(utc, 2024, 5, 6, 9, 0, 0)
	tests := []struct {
		name        string
		cron, text  string
		after, upto time.Time
		loc         *time.Location
		want        time.Time // zero: none
	}{
		{"text at on day", "", "at 9:00 am on Mon", mon9.Add(-24 * time.Hour), mon9.Add(time.Hour), utc, mon9},
		{"text at on day: window end inclusive", "", "at 9:00 am on Mon", mon9.Add(-time.Hour), mon9, utc, mon9},
		{"text at on day: window start exclusive", "", "at 9:00 am on Mon", mon9, mon9.Add(time.Hour), utc, time.Time{}},
		{"text other day: none", "", "at 9:00 am on Tue", mon9.Add(-24 * time.Hour), mon9.Add(time.Hour), utc, time.Time{}},
		{"text wins over cron", "0 10 * * *", "at 9:00", mon9.Add(-time.Hour), mon9.Add(2 * time.Hour), utc, mon9},
		{"cron used without text", "0 10 * * *", "  ", mon9.Add(-time.Hour), mon9.Add(2 * time.Hour), utc, mon9.Add(time.Hour)},
		{"cron weekly", "0 9 * * 1", "", mon9.Add(-7 * 24 * time.Hour), mon9.Add(5 * 24 * time.Hour), utc, mon9},
		{"cron latest of many", "*/15 * * * *", "", mon9, mon9.Add(50 * time.Minute), utc, mon9.Add(45 * time.Minute)},
		{"cron every minute, long window", "* * * * *", "", mon9.Add(-30 * 24 * time.Hour), mon9.Add(90 * time.Second), utc, mon9.Add(time.Minute)},
		{"cron sparse, long window", "0 0 29 2 *", "", at(utc, 2019, 1, 1, 0, 0, 0), mon9, utc, at(utc, 2024, 2, 29, 0, 0, 0)},
		{"cron dow 7 is sunday", "0 8 * * 7", "", mon9.Add(-3 * 24 * time.Hour), mon9, utc, at(utc, 2024, 5, 5, 8, 0, 0)},
		{"cron dow range to 7", "0 8 * * 6-7", "", mon9.Add(-3 * 24 * time.Hour), mon9, utc, at(utc, 2024, 5, 5, 8, 0, 0)},
		{"cron in local zone", "0 9 * * *", "", mon9.Add(-24 * time.Hour), mon9, eat, at(eat, 2024, 5, 6, 9, 0, 0)},
		{"cron descriptor", "@daily", "", mon9.Add(-24 * time.Hour), mon9, utc, at(utc, 2024, 5, 6, 0, 0, 0)},
		{"text in local zone", "", "at 9:00 am", mon9.Add(-24 * time.Hour), mon9, eat, at(eat, 2024, 5, 6, 9, 0, 0)},
		{"every 5 minutes", "", "every 5 minutes", mon9, mon9.Add(13*time.Minute + 59*time.Second), utc, mon9.Add(10 * time.Minute)},
		{"every 7 minutes restarts each hour", "", "every 7 mins", mon9.Add(-5 * time.Minute), mon9.Add(3 * time.Minute), utc, mon9},
		{"every 2 hours", "", "every 2 hours", mon9, mon9.Add(4*time.Hour + 59*time.Minute), utc, mon9.Add(3 * time.Hour)},
		{"every hour", "", "every hour", mon9, mon9.Add(90 * time.Minute), utc, mon9.Add(time.Hour)},
		{"every day", "", "every day", mon9.Add(-48 * time.Hour), mon9, utc, at(utc, 2024, 5, 6, 0, 0, 0)},
		{"every 2 days counts from the 1st", "", "every 2 days at 10:00", at(utc, 2024, 5, 1, 0, 0, 0), mon9.Add(2 * time.Hour), utc, at(utc, 2024, 5, 5, 10, 0, 0)},
		{"every month: the 1st at midnight", "", "every month", at(utc, 2024, 3, 15, 0, 0, 0), mon9, utc, at(utc, 2024, 5, 1, 0, 0, 0)},
		{"every weekday", "", "every weekday at 8:30", at(utc, 2024, 5, 3, 9, 0, 0), at(utc, 2024, 5, 5, 23, 0, 0), utc, time.Time{}},
		{"every weekday hits monday", "", "every weekday at 8:30", at(utc, 2024, 5, 3, 9, 0, 0), mon9, utc, at(utc, 2024, 5, 6, 8, 30, 0)},
		{"every weekend", "", "every weekend at 10:00 am", mon9.Add(-72 * time.Hour), mon9, utc, at(utc, 2024, 5, 5, 10, 0, 0)},
		{"on weekends", "", "on weekends at 10:00 am", mon9.Add(-72 * time.Hour), mon9, utc, at(utc, 2024, 5, 5, 10, 0, 0)},
		{"first day of the month", "", "on the first day of the month", at(utc, 2024, 4, 10, 0, 0, 0), mon9, utc, at(utc, 2024, 5, 1, 0, 0, 0)},
		{"first day of the month at 9 am", "", "on the first day of the month at 9 am", at(utc, 2024, 4, 10, 0, 0, 0), mon9, utc, at(utc, 2024, 5, 1, 9, 0, 0)},
		{"1st and 15th", "", "at 9:00 on the 1st and 15th day of the month", at(utc, 2024, 4, 10, 0, 0, 0), mon9, utc, at(utc, 2024, 5, 1, 9, 0, 0)},
		{"1st and 15th, later", "", "at 9:00 on the 1st, 15th day of the month", at(utc, 2024, 4, 10, 0, 0, 0), at(utc, 2024, 5, 20, 0, 0, 0), utc, at(utc, 2024, 5, 15, 9, 0, 0)},
		{"last day of the month", "", "on the last day of the month at 23:00", at(utc, 2024, 2, 1, 0, 0, 0), at(utc, 2024, 3, 15, 0, 0, 0), utc, at(utc, 2024, 2, 29, 23, 0, 0)},
		{"first day of the week is sunday", "", "on the first day of the week", mon9.Add(-72 * time.Hour), mon9, utc, at(utc, 2024, 5, 5, 0, 0, 0)},
		{"on Mon,Wed at 10:00", "", "on Mon,Wed at 10:00", at(utc, 2024, 5, 1, 0, 0, 0), mon9, utc, at(utc, 2024, 5, 1, 10, 0, 0)},
		{"on Mon,Wed at 10:00 monday", "", "on Mon,Wed at 10:00", at(utc, 2024, 5, 1, 0, 0, 0), mon9.Add(time.Hour), utc, mon9.Add(time.Hour)},
		{"full day names", "", "at 10:00 on Monday and Wednesday", at(utc, 2024, 5, 1, 0, 0, 0), mon9.Add(time.Hour), utc, mon9.Add(time.Hour)},
		{"two times", "", "at 9:00 am and 5:00 pm", mon9, mon9.Add(9 * time.Hour), utc, at(utc, 2024, 5, 6, 17, 0, 0)},
		{"two times, first", "", "at 9:00 am, 5:00 pm", mon9.Add(-time.Minute), mon9.Add(7 * time.Hour), utc, mon9},
		{"seconds", "", "at 9:00:30", mon9, mon9.Add(time.Minute), utc, mon9.Add(30 * time.Second)},
		{"12 am is midnight", "", "at 12:00 am", mon9.Add(-24 * time.Hour), mon9, utc, at(utc, 2024, 5, 6, 0, 0, 0)},
		{"12 pm is noon", "", "at 12pm", mon9, mon9.Add(4 * time.Hour), utc, at(utc, 2024, 5, 6, 12, 0, 0)},
		{"attached am/pm", "", "at 9:15pm", mon9, mon9.Add(14 * time.Hour), utc, at(utc, 2024, 5, 6, 21, 15, 0)},
		{"clauses joined by and", "", "every weekday and at 9:00", mon9.Add(-73 * time.Hour), mon9.Add(-time.Minute), utc, at(utc, 2024, 5, 3, 9, 0, 0)},
		{"every 15 minutes on fri", "", "every 15 minutes and on Fri", mon9.Add(-72 * time.Hour), mon9, utc, at(utc, 2024, 5, 3, 23, 45, 0)},
		{"every 15 minutes between hours", "", "every 15 minutes on Mon", mon9.Add(-time.Hour), mon9.Add(20 * time.Minute), utc, mon9.Add(15 * time.Minute)},
		{"also: union", "", "at 8:00 on Mon also at 12:00 on Sat", mon9.Add(-72 * time.Hour), mon9.Add(-2 * time.Hour), utc, at(utc, 2024, 5, 4, 12, 0, 0)},
		{"also: union, other", "", "at 8:00 on Mon also at 12:00 on Sat", mon9.Add(-72 * time.Hour), mon9, utc, at(utc, 2024, 5, 6, 8, 0, 0)},
		{"upper case", "", "AT 9:00 AM ON MON", mon9.Add(-time.Hour), mon9, utc, mon9},
		{"empty window", "", "every minute", mon9, mon9, utc, time.Time{}},
		{"reversed window", "", "every minute", mon9, mon9.Add(-time.Hour), utc, time.Time{}},
		{"sub-second bounds", "", "at 9:00", mon9.Add(-time.Nanosecond), mon9.Add(999 * time.Millisecond), utc, mon9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.cron, tc.text)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, ok := s.Latest(tc.after, tc.upto, tc.loc)
			if tc.want.IsZero() {
				if ok {
					t.Fatalf("got %v, want none", got)
				}
				return
			}
			if !ok || !got.Equal(tc.want) {
				t.Fatalf("got %v %v, want %v", got, ok, tc.want)
			}
			if got.Location() != tc.loc {
				t.Errorf("location %v, want %v", got.Location(), tc.loc)
			}
		})
	}
}

func TestLatestDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	// 2024-03-10 02:30 does not exist in New York.
	s, err := Parse("", "at 2:30 am")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s.Latest(at(ny, 2024, 3, 9, 12, 0, 0), at(ny, 2024, 3, 10, 12, 0, 0), ny)
	if ok {
		t.Fatalf("got %v in the DST gap", got)
	}
	got, ok = s.Latest(at(ny, 2024, 3, 9, 0, 0, 0), at(ny, 2024, 3, 11, 12, 0, 0), ny)
	if want := at(ny, 2024, 3, 11, 2, 30, 0); !ok || !got.Equal(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Local 9:00 across the change stays 9:00 local.
	s, _ = Parse("", "at 9:00")
	got, ok = s.Latest(at(ny, 2024, 3, 10, 0, 0, 0), at(ny, 2024, 3, 10, 10, 0, 0), ny)
	if want := at(ny, 2024, 3, 10, 9, 0, 0); !ok || !got.Equal(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	c, _ := Parse("0 9 * * *", "")
	got, ok = c.Latest(at(ny, 2024, 3, 10, 0, 0, 0), at(ny, 2024, 3, 10, 10, 0, 0), ny)
	if want := at(ny, 2024, 3, 10, 9, 0, 0); !ok || !got.Equal(want) {
		t.Fatalf("cron: got %v, want %v", got, want)
	}
}

func TestLatestMatchesBruteForce(t *testing.T) {
	// Text and cron forms of the same schedules agree over a month.
	pairs := [][2]string{
		{"*/5 * * * *", "every 5 minutes"},
		{"0 */2 * * *", "every 2 hours"},
		{"30 8 * * 1-5", "every weekday at 8:30"},
		{"0 10 * * 1,3", "on Mon,Wed at 10:00"},
		{"0 0 1 * *", "on the first day of the month"},
		{"0 9,17 * * *", "at 9:00 am and 5:00 pm"},
		{"0 0 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 * *", "every 2 days"},
	}
	start := at(time.UTC, 2024, 2, 1, 0, 0, 0)
	for _, p := range pairs {
		c, err := Parse(p[0], "")
		if err != nil {
			t.Fatal(err)
		}
		x, err := Parse("", p[1])
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 400; i++ {
			upto := start.Add(time.Duration(i) * 107 * time.Minute)
			after := upto.Add(-time.Duration(i%50+1) * 61 * time.Minute)
			a, aok := c.Latest(after, upto, time.UTC)
			b, bok := x.Latest(after, upto, time.UTC)
			if aok != bok || !a.Equal(b) {
				t.Fatalf("%q vs %q in (%v, %v]: cron %v %v, text %v %v", p[0], p[1], after, upto, a, aok, b, bok)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ cron, text, want string }{
		{"", "", "no cron or text_expression"},
		{"", "   ", "no cron or text_expression"},
		{"0 9 * *", "", "cron"},
		{"61 * * * *", "", "cron"},
		{"@every 5m", "", "@every"},
		{"* * * * * *", "", "cron"},
		{"", "whenever", `expected at, on or every at "whenever"`},
		{"", "at", "expected a time"},
		{"", "at 25:00", "bad time"},
		{"", "at 9", "needs am or pm"},
		{"", "at 13:00 pm", "hour 13 with pm"},
		{"", "at 9:0", "two digits"},
		{"", "on Funday", "expected a day name"},
		{"", "on the 32nd day of the month", "at most 31"},
		{"", "on the 8th day of the week", "7 days"},
		{"", "on the first hour", `only "day"`},
		{"", "every 0 minutes", "positive"},
		{"", "every 2 weeks", "not supported"},
		{"", "every 5 minutes except on Mon", `"except" is not supported`},
		{"", "every 5 minutes between 9:00 and 17:00", `"between" is not supported`},
		{"", "on Mon on Tue", "given twice"},
		{"", "at 9:00 at 10:00", "given twice"},
		{"", "every weekday on Mon", "given twice"},
		{"", "at 9:00 and", "expected at, on or every"},
		{"", "at 9:00 also", "expected at, on or every"},
		{"", "on the 31st day of the month every 2 months and on the 30th day", "given twice"},
		{"", "at 9:00 and every 2 hours", "exclude each other"},
		{"", "at 9:00 #", "unexpected character"},
		{"", "every 1234567 minutes", "too long"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.cron, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q, %q) = %v, want error containing %q", tc.cron, tc.text, err, tc.want)
		}
	}
}

func TestZeroSchedule(t *testing.T) {
	var s Schedule
	if !s.IsZero() {
		t.Fatal("zero schedule not IsZero")
	}
	if _, ok := s.Latest(time.Unix(0, 0), time.Now(), nil); ok {
		t.Fatal("zero schedule fired")
	}
	p, _ := Parse("", " at 9:00 ")
	if p.String() != "at 9:00" || p.IsZero() {
		t.Fatalf("String() = %q", p.String())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"at 9:00 am on Mon", "every 5 minutes", "on the first day of the month",
		"on Mon,Wed at 10:00", "every weekday", "at 9:00 am and 5:00 pm also on the last day of the week",
		"0 9 * * 1", "*/5 * * * *", "@daily", "at 12pm", "every 3 days and at 1:02:03"} {
		f.Add(s, s)
	}
	base := time.Date(2024, 5, 6, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cronExpr, text string) {
		for _, args := range [][2]string{{cronExpr, ""}, {"", text}} {
			s, err := Parse(args[0], args[1])
			if err != nil {
				continue
			}
			got, ok := s.Latest(base.Add(-49*time.Hour), base, time.UTC)
			if ok && (got.After(base) || !got.After(base.Add(-49*time.Hour))) {
				t.Fatalf("%q: %v outside the window", args, got)
			}
		}
	})
}

func TestNext(t *testing.T) {
	from := time.Date(2024, 5, 1, 1, 59, 40, 500e6, time.UTC) // a Wednesday
	cases := []struct {
		cron, text string
		want       time.Time
	}{
		{"", "every 1 seconds", time.Date(2024, 5, 1, 1, 59, 40, 0, time.UTC)},
		{"", "at 02:00", time.Date(2024, 5, 1, 2, 0, 0, 0, time.UTC)},
		{"", "at 01:00", time.Date(2024, 5, 2, 1, 0, 0, 0, time.UTC)},
		{"", "at 02:00 on Sun", time.Date(2024, 5, 5, 2, 0, 0, 0, time.UTC)},
		{"0 2 * * *", "", time.Date(2024, 5, 1, 2, 0, 0, 0, time.UTC)},
		{"59 1 * * *", "", time.Date(2024, 5, 2, 1, 59, 0, 0, time.UTC)},
		{"0 0 1 1 *", "", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		s, err := Parse(c.cron, c.text)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := s.Next(from, time.UTC)
		if !ok || !got.Equal(c.want) {
			t.Errorf("Next(%q%q) = %v %v, want %v", c.cron, c.text, got, ok, c.want)
		}
	}
	if _, ok := (Schedule{}).Next(from, time.UTC); ok {
		t.Error("the zero schedule has a next time")
	}
}
