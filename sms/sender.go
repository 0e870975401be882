package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sentinel-go/couch"
	"sentinel-go/messages"
)

// sendBatch is how many messages a run sends (spec §8.1).
const sendBatch = 25

// maxScan bounds the rows read to find sendBatch messages not in backoff.
const maxScan = 500

// pollPage and pollLimit bound a RapidPro polling run.
const (
	pollPage  = 25
	pollLimit = 1000
)

// retry is the backoff of one message after retryable failures. It lives
// in memory: a restart gives every message a fresh start, which is no worse
// than the reference (which has no backoff at all).
type retry struct {
	attempts int
	next     time.Time
}

// senderState is what the loop carries from one run to the next.
type senderState struct {
	retries map[string]*retry
}

// RunSender sends pending messages through settings.sms.outgoing_service
// (rapidpro or africas-talking) and polls RapidPro statuses, once per
// SendInterval, until ctx is cancelled. Runs never overlap: the next one is
// timed from the end of the previous one.
func (s *Service) RunSender(ctx context.Context) error {
	s.log.Info().Dur("interval_ms", s.opts.SendInterval).Msg("SMS sender started")
	st := &senderState{retries: map[string]*retry{}}
	t := time.NewTimer(s.opts.FirstSendDelay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.log.Info().Msg("SMS sender stopped")
			return nil
		case <-t.C:
		}
		if err := s.sendRun(ctx, st); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("SMS send run failed")
		}
		t.Reset(s.opts.SendInterval)
	}
}

// provider is a configured push aggregator, ready to send one message.
type provider struct {
	name string
	send func(ctx context.Context, to, text string) sendResult
	// poll is RapidPro's status lookup; nil for providers that push reports.
	poll func(ctx context.Context, ref string) (string, error)
}

// provider builds the configured aggregator with its credentials, read now
// (so credential changes apply without a restart). nil, nil: no push
// aggregator is configured (CHT Gateway or none).
func (s *Service) provider(ctx context.Context, sn *snapshot) (*provider, error) {
	switch svc := sn.outgoingService(); svc {
	case ServiceRapidPro:
		base := rapidProBase(sn)
		if base == "" {
			return nil, errors.New("sms.rapidpro.url is not set: nothing sent")
		}
		token, ok, err := s.secret(ctx, keyRapidProOutgoing)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("credential %s is not configured: nothing sent", keyRapidProOutgoing)
		}
		return &provider{
			name: svc,
			send: func(ctx context.Context, to, text string) sendResult {
				return s.rapidProSend(ctx, base, token, to, text)
			},
			poll: func(ctx context.Context, ref string) (string, error) { return s.rapidProStatus(ctx, base, token, ref) },
		}, nil
	case ServiceAfricasTalking:
		user := sn.settings.String("sms.africas_talking.username", "")
		if user == "" {
			return nil, errors.New("sms.africas_talking.username is not set: nothing sent")
		}
		key, ok, err := s.secret(ctx, keyATOutgoing)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("credential %s is not configured: nothing sent", keyATOutgoing)
		}
		endpoint := s.opts.AfricasTalkingURL
		if user == "sandbox" {
			endpoint = s.opts.AfricasTalkingSandboxURL
		}
		// An unset reply_to sends no `from` (the reference sent "undefined").
		from := sn.settings.String("sms.reply_to", "")
		return &provider{
			name: svc,
			send: func(ctx context.Context, to, text string) sendResult {
				return s.atSend(ctx, endpoint, user, key, from, to, text)
			},
		}, nil
	case ServiceGateway, "":
		return nil, nil
	default:
		return nil, fmt.Errorf("sms.outgoing_service %q is not supported by the sender", svc)
	}
}

// sendRun is one tick: send up to 25 due messages, then poll statuses.
func (s *Service) sendRun(ctx context.Context, st *senderState) error {
	sn, err := s.settings(ctx)
	if err != nil {
		return err
	}
	p, err := s.provider(ctx, sn)
	if err != nil || p == nil {
		return err
	}
	if err := s.sendDue(ctx, sn, p, st); err != nil {
		return err
	}
	if p.poll != nil {
		return s.pollStatuses(ctx, p)
	}
	return nil
}

// sendDue sends the oldest due messages that are not waiting out a
// backoff, one at a time, saving each outcome before the next send.
func (s *Service) sendDue(ctx context.Context, sn *snapshot, p *provider, st *senderState) error {
	now := s.opts.Now()
	due, err := s.dueMessages(ctx, sendBatch, maxScan, func(uuid string) bool {
		r := st.retries[uuid]
		return r == nil || !now.Before(r.next)
	})
	if err != nil {
		return err
	}
	s.pruneRetries(st, now)
	if len(due) == 0 {
		return nil
	}
	ids := make([]string, len(due))
	for i, m := range due {
		ids[i] = m.docID
	}
	docs, err := s.db.GetMany(ctx, uniq(ids))
	if err != nil {
		return err
	}
	cc, pv := sn.settings.DefaultCountryCode(), sn.settings.String("phone_validation", "")
	sent := 0
	for _, m := range due {
		if ctx.Err() != nil {
			return nil
		}
		doc := docs[m.docID]
		if doc == nil {
			continue
		}
		to, text, ok := sendable(doc, m.uuid, cc, pv)
		if !ok {
			continue
		}
		if s.opts.Fence != nil {
			if err := s.opts.Fence(); err != nil {
				return fmt.Errorf("send run stopped: %w", err)
			}
		}
		res := p.send(ctx, to, text)
		if res.change == nil && ctx.Err() != nil {
			return nil // stopping: not the message's failure
		}
		log := s.log.With().Str("doc_id", m.docID).Str("uuid", m.uuid).Str("service", p.name).Logger()
		var change *stateChange
		if res.change != nil {
			delete(st.retries, m.uuid)
			change = res.change
			sent++
			log.Info().Str("state", change.state).Msg("Message handed to the aggregator")
		} else {
			r := st.retries[m.uuid]
			if r == nil {
				r = &retry{}
				st.retries[m.uuid] = r
			}
			r.attempts++
			r.next = now.Add(s.backoff(r.attempts))
			if r.attempts >= s.opts.MaxAttempts {
				delete(st.retries, m.uuid)
				change = &stateChange{state: messages.StateFailed,
					details: fmt.Sprintf("Gave up after %d attempts: %v", r.attempts, res.err)}
				log.Error().Err(res.err).Int("attempts", r.attempts).Msg("Message failed too many times; set failed")
			} else {
				log.Warn().Err(res.err).Int("attempts", r.attempts).Time("next", r.next).Msg("Message not sent; will retry")
			}
		}
		if change == nil {
			continue
		}
		change.uuid = m.uuid
		if _, err := s.applyChanges(ctx, []string{m.docID}, []stateChange{*change}); err != nil {
			// The send happened: do not count it as a retryable failure,
			// but keep the message out of the next runs for a while so a
			// database outage does not resend it every tick.
			st.retries[m.uuid] = &retry{next: now.Add(s.opts.RetryBase)}
			return fmt.Errorf("save the state of message %s: %w", m.uuid, err)
		}
	}
	return nil
}

// backoff is RetryBase doubled per attempt, capped at RetryMax.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.opts.RetryBase
	for i := 1; i < attempts && d < s.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.opts.RetryMax)
}

// retryForget is how long after its backoff ended a message that never came
// back into a run is forgotten (sent by someone else, cleared, deleted).
const retryForget = 24 * time.Hour

// pruneRetries bounds the memory of the retry table.
func (s *Service) pruneRetries(st *senderState, now time.Time) {
	for k, r := range st.retries {
		if now.Sub(r.next) > retryForget {
			delete(st.retries, k)
		}
	}
}

// pollStatuses asks RapidPro the status of messages awaiting one, whose
// state changed within PollMaxAge, 25 at a time, until none remain or
// RapidPro rate-limits us (spec §6.3). Older messages are no longer polled
// (each poll costs API quota; channels without delivery reports would
// otherwise be polled forever).
func (s *Service) pollStatuses(ctx context.Context, p *provider) error {
	since := float64(s.opts.Now().Add(-s.opts.PollMaxAge).UnixMilli())
	// A polled message whose state changes moves later in the view: the
	// same run must not poll it again.
	seen := map[string]bool{}
	var runErr error
	err := s.eachRow(ctx, "awaiting_status", []any{since}, pollPage, pollLimit, func(r couch.Row) bool {
		if ctx.Err() != nil {
			return false
		}
		ref, _ := r.Value.(string)
		if seen[r.ID+"\x00"+ref] {
			return true
		}
		seen[r.ID+"\x00"+ref] = true
		status, err := p.poll(ctx, ref)
		if errors.Is(err, errRateLimited) {
			s.log.Warn().Msg("RapidPro rate limit reached; polling again next run")
			return false
		}
		if err != nil {
			s.log.Warn().Err(err).Str("gateway_ref", ref).Msg("Could not poll a message status")
			return true
		}
		st, ok := rapidProStates[status]
		if !ok {
			// Unlisted statuses (pending, read, …) change nothing rather
			// than moving a sent message backwards (§6.3 ⚠).
			return true
		}
		c := stateChange{ref: ref, state: st[0], details: st[1], keepRef: true}
		if _, err := s.applyChanges(ctx, []string{r.ID}, []stateChange{c}); err != nil {
			runErr = err
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	return runErr
}
