package schedule

import (
	"time"

	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// Clearable says whether a task in this state may be cleared.
func Clearable(state any) bool {
	return state == messages.StateScheduled || state == messages.StatePending || state == messages.StateMuted
}

// DueOf reads a task's due time: `due` (ISO or epoch ms), else `timestamp`,
// else the doc's reported_date.
func DueOf(task, doc map[string]any, loc *time.Location) (time.Time, bool) {
	for _, v := range []any{task["due"], task["timestamp"], doc["reported_date"]} {
		if v == nil {
			continue
		}
		if t, ok := toTime(v, loc); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// Clear silences the scheduled tasks of registration reg whose `type` is in
// types (schedules.md §3): without silenceFor every clearable task of those
// types; with it, every clearable task of each (group, type) that has a task
// due no later than until (whole groups). Cleared tasks get
// `cleared_by: reportID`. It reports whether reg changed.
func Clear(reg map[string]any, types []string, silenceFor *Duration, reported time.Time, reportID string, now time.Time, loc *time.Location) bool {
	want := map[string]bool{}
	for _, t := range types {
		want[t] = true
	}
	var candidates []map[string]any
	for _, t := range jsv.Slice(reg["scheduled_tasks"]) {
		task := jsv.Map(t)
		if task == nil {
			continue
		}
		if typ, _ := task["type"].(string); want[typ] {
			candidates = append(candidates, task)
		}
	}
	type groupKey struct {
		group any
		typ   any
	}
	var groups map[groupKey]bool
	if silenceFor != nil {
		until := silenceFor.AddTo(reported)
		groups = map[groupKey]bool{}
		for _, task := range candidates {
			if due, ok := DueOf(task, reg, loc); ok && !due.After(until) {
				groups[groupKey{task["group"], task["type"]}] = true
			}
		}
	}
	changed := false
	for _, task := range candidates {
		if !Clearable(task["state"]) {
			continue
		}
		if groups != nil && !groups[groupKey{task["group"], task["type"]}] {
			continue
		}
		messages.SetState(task, messages.StateCleared, nil, "", false, now)
		task["cleared_by"] = reportID
		changed = true
	}
	return changed
}
