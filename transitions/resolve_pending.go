package transitions

import (
	"context"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// resolvePending marks every pending message of any doc as sent (a test aid).
type resolvePending struct{}

func newResolvePending(*config.Settings, string) (Transition, []config.Problem) {
	return resolvePending{}, nil
}

func (resolvePending) Name() string { return "resolve_pending" }

func (resolvePending) Filter(_ *Env, c *Change) bool {
	return len(pendingTasks(c.Doc)) > 0
}

// pendingTasks are the pending tasks with a complete message; scheduled
// tasks count only when the doc has no errors.
func pendingTasks(doc Doc) []map[string]any {
	var out []map[string]any
	add := func(list any) {
		for _, t := range jsv.Slice(list) {
			task := jsv.Map(t)
			if task == nil || task["state"] != messages.StatePending {
				continue
			}
			for _, m := range jsv.Slice(task["messages"]) {
				msg := jsv.Map(m)
				if jsv.Truthy(msg["to"]) && jsv.Truthy(msg["message"]) {
					out = append(out, task)
					break
				}
			}
		}
	}
	add(doc["tasks"])
	if len(jsv.Slice(doc["errors"])) == 0 {
		add(doc["scheduled_tasks"])
	}
	return out
}

func (resolvePending) Run(_ context.Context, env *Env, c *Change) (bool, error) {
	changed := false
	for _, task := range pendingTasks(c.Doc) {
		if messages.SetState(task, messages.StateSent, nil, "", false, env.Now) {
			task["timestamp"] = messages.ISO(env.Now)
			changed = true
		}
	}
	return changed, nil
}
