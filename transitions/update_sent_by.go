package transitions

import (
	"context"
	"fmt"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

// updateSentBy sets `sent_by` on an incoming SMS to the name of the contact
// owning the sending number.
type updateSentBy struct{}

func newUpdateSentBy(*config.Settings, string) (Transition, []config.Problem) {
	return updateSentBy{}, nil
}

func (updateSentBy) Name() string { return "update_sent_by" }

// Filter: a data_record with `from`, no `sent_by` key at all (null or "" also
// block it), and no successful run yet.
func (updateSentBy) Filter(_ *Env, c *Change) bool {
	if c.Doc["type"] != "data_record" || !jsv.Truthy(c.Doc["from"]) {
		return false
	}
	if _, has := c.Doc["sent_by"]; has {
		return false
	}
	rec := jsv.Map(jsv.Map(c.Info["transitions"])["update_sent_by"])
	return rec["ok"] != true
}

func (updateSentBy) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	found, err := contactsByPhone(ctx, env, jsv.String(c.Doc["from"]))
	if err != nil {
		return false, fmt.Errorf("find contact by phone: %w", err)
	}
	if len(found) == 0 {
		return false, nil
	}
	name, _ := found[0]["name"].(string)
	if name == "" {
		return false, nil
	}
	c.Doc["sent_by"] = name
	return true, nil
}
