// Package messages is the outgoing message model: tasks and scheduled tasks,
// their states and history, and generating a message (text, locale,
// template context, recipient, deny and duplicate rules).
package messages

import (
	"time"

	"sentinel-go/jsv"
)

// Task states.
const (
	StateScheduled    = "scheduled"
	StatePending      = "pending"
	StateForwarded    = "forwarded-to-gateway"
	StateReceived     = "received-by-gateway"
	StateForwardedBy  = "forwarded-by-gateway"
	StateSent         = "sent"
	StateDelivered    = "delivered"
	StateFailed       = "failed"
	StateDenied       = "denied"
	StateDuplicate    = "duplicate"
	StateCleared      = "cleared"
	StateClear        = "clear" // sic: failed to generate when due with sms.clear_failing_schedules
	StateMuted        = "muted"
	StateUnrecognised = "unrecognised"
)

// ISO formats t as the daemon writes dates: UTC with milliseconds.
func ISO(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// SetState moves task to state with optional details (nil: none) and
// gateway ref ("" with hasRef false: none). It is a no-op when the task is
// already in that state with that last history entry and the same details
// and ref. It reports whether the task changed.
func SetState(task map[string]any, state string, details any, gatewayRef string, hasRef bool, now time.Time) bool {
	hist, _ := task["state_history"].([]any)
	if task["state"] == state && len(hist) > 0 {
		last := jsv.Map(hist[len(hist)-1])
		same := last != nil && last["state"] == state
		if same && details != nil && !jsonEqual(task["state_details"], details) {
			same = false
		}
		if same && hasRef && task["gateway_ref"] != gatewayRef {
			same = false
		}
		if same {
			return false
		}
	}
	task["state"] = state
	if details != nil {
		task["state_details"] = details
	} else {
		delete(task, "state_details")
	}
	if hasRef {
		task["gateway_ref"] = gatewayRef
	} else {
		delete(task, "gateway_ref")
	}
	entry := map[string]any{"state": state, "timestamp": ISO(now)}
	if details != nil {
		entry["state_details"] = details
	}
	task["state_history"] = append(hist, entry)
	return true
}

func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !jsonEqual(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}
