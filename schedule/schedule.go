package schedule

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/messages"
	"sentinel-go/templates"
)

// Schedule is one entry of settings.schedules.
type Schedule struct {
	Name           string
	StartFrom      []string
	StartMidGroup  bool
	TranslationKey string
	Messages       []Message
}

// Message is one message of a schedule.
type Message struct {
	Group    int
	Offset   Duration
	OffsetOK bool
	SendDay  string
	SendTime string
	Spec     messages.Spec
	Raw      map[string]any
}

// Find returns the schedule named name (the last one wins, as duplicate
// names do in the reference), parsed from settings.schedules.
func Find(s *config.Settings, name string) (*Schedule, bool) {
	var found map[string]any
	for _, e := range jsv.Slice(s.Raw["schedules"]) {
		m := jsv.Map(e)
		if m != nil && m["name"] == name {
			found = m
		}
	}
	if found == nil {
		return nil, false
	}
	sch := Parse(found)
	return &sch, true
}

// Parse reads one schedule definition.
func Parse(m map[string]any) Schedule {
	sch := Schedule{StartFrom: []string{"reported_date"}}
	sch.Name, _ = m["name"].(string)
	sch.StartMidGroup = m["start_mid_group"] == true
	sch.TranslationKey, _ = m["translation_key"].(string)
	switch sf := m["start_from"].(type) {
	case string:
		if sf != "" {
			sch.StartFrom = []string{sf}
		}
	case []any:
		var paths []string
		for _, p := range sf {
			if s, ok := p.(string); ok {
				paths = append(paths, s)
			}
		}
		if len(paths) > 0 {
			sch.StartFrom = paths
		}
	}
	for _, e := range jsv.Slice(m["messages"]) {
		em := jsv.Map(e)
		if em == nil {
			continue
		}
		msg := Message{Raw: em, Spec: messages.SpecOf(em)}
		msg.Group = int(jsv.Number(em["group"]))
		msg.Offset, msg.OffsetOK = ParseDuration(jsv.String(em["offset"]))
		msg.SendDay, _ = em["send_day"].(string)
		msg.SendTime, _ = em["send_time"].(string)
		sch.Messages = append(sch.Messages, msg)
	}
	return sch
}

// Start is the schedule's start for doc: the first start_from path whose
// value is not undefined (null counts and means no tasks).
func (s Schedule) Start(doc map[string]any, loc *time.Location) (time.Time, bool) {
	for _, p := range s.StartFrom {
		v, ok := jsv.Get(doc, p)
		if !ok {
			continue
		}
		return toTime(v, loc)
	}
	return time.Time{}, false
}

func toTime(v any, loc *time.Location) (time.Time, bool) {
	switch x := v.(type) {
	case float64:
		return time.UnixMilli(int64(x)).In(loc), true
	case string:
		return templates.ParseDate(x, loc)
	}
	return time.Time{}, false
}

var sendTimeRE = regexp.MustCompile(`^\s*(\d{1,2}):(\d{2})\s*(?:([+-])(\d{2}):?(\d{2}))?\s*$`)

// SendTime is a parsed `send_time`: "HH:mm" with an optional UTC offset
// ("±HH:MM" or "±HHMM").
type SendTime struct {
	Hour, Minute int
	// Offset is the UTC offset in seconds when HasOffset.
	Offset    int
	HasOffset bool
}

// ParseSendTime reads a `send_time` as the schedules do; ok is false when it
// is not of that form. Hours and minutes are not range-checked here: the
// reference rolls 25:99 over into the next day, and so does Due.
func ParseSendTime(s string) (SendTime, bool) {
	p := sendTimeRE.FindStringSubmatch(s)
	if p == nil {
		return SendTime{}, false
	}
	var st SendTime
	st.Hour, _ = strconv.Atoi(p[1])
	st.Minute, _ = strconv.Atoi(p[2])
	if p[3] != "" {
		oh, _ := strconv.Atoi(p[4])
		om, _ := strconv.Atoi(p[5])
		st.Offset, st.HasOffset = oh*3600+om*60, true
		if p[3] == "-" {
			st.Offset = -st.Offset
		}
	}
	return st, true
}

// Due computes a message's due time from start (messages without a usable
// offset give ok=false).
func (m Message) Due(start time.Time) (time.Time, bool) {
	if !m.OffsetOK {
		return time.Time{}, false
	}
	due := m.Offset.AddTo(start)
	if m.SendTime != "" {
		if st, ok := ParseSendTime(m.SendTime); ok {
			if st.HasOffset {
				due = due.In(time.FixedZone("", st.Offset))
			}
			y, mo, d := due.Date()
			due = time.Date(y, mo, d, st.Hour, st.Minute, 0, 0, due.Location())
		}
	}
	if m.SendDay != "" {
		if wd, ok := ParseWeekday(m.SendDay); ok {
			due = due.AddDate(0, 0, int(wd)-int(due.Weekday()))
		}
	}
	return due, true
}

// ParseWeekday reads a `send_day`: an English weekday name in any case.
func ParseWeekday(name string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(strings.TrimSpace(name), d.String()) {
			return d, true
		}
	}
	return 0, false
}

// Assign expands schedule sch into doc.scheduled_tasks (schedules.md §2).
// extra is the message context (patient, place, registrations…); muted
// says whether the subject or one of its ancestors is muted.
func Assign(g *messages.Generator, doc map[string]any, sch *Schedule, extra map[string]any, muted bool) {
	start, ok := sch.Start(doc, g.Location)
	if !ok {
		return
	}
	denied := messages.Denied(g.Settings, senderOf(doc))
	skipGroup := map[int]bool{}
	tasks, _ := doc["scheduled_tasks"].([]any)
	for _, m := range sch.Messages {
		if skipGroup[m.Group] && !sch.StartMidGroup {
			continue
		}
		due, ok := m.Due(start)
		if !ok {
			continue // unparsable offset: skipped (reported by the config check)
		}
		task := map[string]any{"due": messages.ISO(due), "group": float64(m.Group), "type": sch.Name}
		if sch.TranslationKey != "" {
			task["translation_key"] = sch.TranslationKey
		}
		if m.Spec.TranslationKey != "" {
			task["message_key"] = m.Spec.TranslationKey
		}
		if r, ok := m.Raw["recipient"]; ok {
			task["recipient"] = r
		}
		hasText := true
		if m.Spec.TranslationKey == "" {
			msg, err := g.Message(doc, m.Spec, extra)
			if err != nil {
				messages.AddError(doc, "parse_error", fmt.Sprintf("%v: message", err))
				continue
			}
			if msg["error"] != nil {
				hasText = false
			} else {
				task["messages"] = []any{msg}
			}
		}
		if due.Before(g.Now) || !hasText {
			skipGroup[m.Group] = true
			continue
		}
		state := messages.StateScheduled
		switch {
		case denied:
			state = messages.StateDenied
		case muted:
			state = messages.StateMuted
		}
		messages.SetState(task, state, nil, "", false, g.Now)
		tasks = append(tasks, task)
	}
	if len(tasks) > 0 {
		doc["scheduled_tasks"] = tasks
	}
}

func senderOf(doc map[string]any) string {
	if s, ok := doc["from"].(string); ok {
		return s
	}
	return ""
}

// ParseTime reads a date string (ISO-8601, date-only as local midnight).
func ParseTime(s string, loc *time.Location) (time.Time, bool) { return templates.ParseDate(s, loc) }
