package transitions

import (
	"context"
	"errors"
	"fmt"

	"sentinel-go/config"
	"sentinel-go/outbound"
)

// markForOutbound pushes docs to external HTTP APIs as configured in
// `outbound` (transitions/mark_for_outbound.md): it sends at once when it
// can and queues the rest in `task:outbound:<id>` for the outbound job. The
// doc itself is never changed.
type markForOutbound struct {
	cfg *outbound.Config
}

func newMarkForOutbound(s *config.Settings, path string) (Transition, []config.Problem) {
	cfg, problems := outbound.Parse(s.Raw["outbound"], s.OutboundOrder)
	if cfg.Empty() && !config.HasErrors(problems) {
		problems = append(problems, config.Warnf("outbound", "mark_for_outbound is enabled but no outbound pushes are configured: it does nothing"))
	}
	return &markForOutbound{cfg: cfg}, problems
}

func (*markForOutbound) Name() string { return "mark_for_outbound" }

// Filter: at least one push is configured. No "has run" check: every
// revision is considered, duplicates are prevented by the payload hash.
func (t *markForOutbound) Filter(_ *Env, c *Change) bool {
	return !t.cfg.Empty() && c.Doc != nil
}

func (t *markForOutbound) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	if env.Sentinel == nil {
		return false, errors.New("no sentinel database")
	}
	// relevant_to of every push first: one throw fails the whole transition
	// and nothing is sent.
	var relevant []*outbound.Push
	for _, name := range t.cfg.Names() {
		p := t.cfg.Get(name)
		ok, err := p.Relevant(ctx, env.JS, c.Doc)
		if err != nil {
			return false, fmt.Errorf("relevant_to of outbound push %q: %w", name, err)
		}
		if ok {
			relevant = append(relevant, p)
		}
	}
	if len(relevant) == 0 {
		return false, nil
	}
	if env.Outbox != nil {
		t.enqueue(ctx, env, c, relevant)
		return false, nil
	}
	pusher := &outbound.Pusher{Sentinel: env.Sentinel, JS: env.JS, Log: env.Log, Now: env.Now, Secrets: env.Secrets}
	var queue []string
	for _, p := range relevant {
		due, err := p.Due(env.Now, env.Location)
		if err != nil {
			env.Log.Error().Str("doc_id", c.ID).Str("push", p.Name).Err(err).
				Msgf("Invalid cron for outbound push %s: %s queued", p.Name, c.ID)
			queue = append(queue, p.Name)
			continue
		}
		if !due {
			env.Log.Debug().Str("doc_id", c.ID).Str("push", p.Name).Str("cron", p.Cron).
				Msg("Outbound push not due (cron): queued")
			queue = append(queue, p.Name)
			continue
		}
		res, _ := pusher.Send(ctx, p, c.ID, c.Doc)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if !res.Done() {
			queue = append(queue, p.Name)
		}
	}
	if len(queue) > 0 {
		if err := outbound.EnsureTask(ctx, env.Sentinel, env.Log, c.ID, queue, env.Now); err != nil {
			return false, err
		}
	}
	return false, nil
}

// enqueue builds the payloads of the relevant pushes and hands them to the
// outbox, whose workers send them, record them in completed_tasks and queue
// the failures in task:outbound:<id>: no HTTP here.
func (t *markForOutbound) enqueue(ctx context.Context, env *Env, c *Change, relevant []*outbound.Push) {
	items := make([]outbound.Item, 0, len(relevant))
	for _, p := range relevant {
		due, err := p.Due(env.Now, env.Location)
		if err != nil {
			env.Log.Error().Str("doc_id", c.ID).Str("push", p.Name).Err(err).
				Msgf("Invalid cron for outbound push %s: %s queued", p.Name, c.ID)
			items = append(items, outbound.Item{Name: p.Name})
			continue
		}
		if !due {
			env.Log.Debug().Str("doc_id", c.ID).Str("push", p.Name).Str("cron", p.Cron).
				Msg("Outbound push not due (cron): queued")
			items = append(items, outbound.Item{Name: p.Name})
			continue
		}
		body, hash, err := p.Prepare(ctx, env.JS, c.Doc)
		if err != nil {
			env.Log.Error().Str("doc_id", c.ID).Str("push", p.Name).Str("reason", err.Error()).
				Msgf("Failed to push %s to %s: %s", c.ID, p.Name, err)
			items = append(items, outbound.Item{Name: p.Name})
			continue
		}
		items = append(items, outbound.Item{Name: p.Name, Push: p, Body: body, Hash: hash,
			Last: outbound.LastHash(c.Info, p.Name), LastKnown: true})
	}
	env.Outbox.Enqueue(c.ID, items)
}

// DryRun says what Run would push, without sending anything (sentinel
// explain): Run's HTTP requests would leave the databases.
func (t *markForOutbound) DryRun(ctx context.Context, env *Env, c *Change) ([]string, error) {
	var out []string
	for _, name := range t.cfg.Names() {
		p := t.cfg.Get(name)
		ok, err := p.Relevant(ctx, env.JS, c.Doc)
		if err != nil {
			return nil, fmt.Errorf("relevant_to of outbound push %q: %w", name, err)
		}
		dest := "(no usable destination)"
		if p.Destination != nil {
			dest = p.Destination.BaseURL + p.Destination.Path
		}
		due, derr := p.Due(env.Now, env.Location)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("outbound push %q: not relevant (relevant_to is false)", name))
		case derr != nil || !due:
			out = append(out, fmt.Sprintf("outbound push %q: relevant; queued for the outbound job (cron %q not due now)", name, p.Cron))
		default:
			out = append(out, fmt.Sprintf("outbound push %q: relevant; would be sent now to %s (queued for the outbound job if that fails)", name, dest))
		}
	}
	return out, nil
}
