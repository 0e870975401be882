package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// gatewayBatch is the most messages handed to CHT Gateway per poll (§4.3).
const gatewayBatch = 25

// gatewayRequest is the body CHT Gateway posts on each poll.
type gatewayRequest struct {
	Messages []gatewayIncoming `json:"messages"`
	Updates  []gatewayUpdate   `json:"updates"`
}

type gatewayIncoming struct {
	ID          any `json:"id"`
	From        any `json:"from"`
	Content     any `json:"content"`
	SMSSent     any `json:"sms_sent"`
	SMSReceived any `json:"sms_received"`
}

type gatewayUpdate struct {
	ID     any    `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// gatewayOut is one message handed to the gateway.
type gatewayOut struct {
	ID      string `json:"id"`
	To      string `json:"to"`
	Content string `json:"content"`
}

// gatewayStates maps CHT Gateway statuses to task states (§4.2).
var gatewayStates = map[string]string{
	"UNSENT":    messages.StateReceived,
	"PENDING":   messages.StateForwardedBy,
	"SENT":      messages.StateSent,
	"DELIVERED": messages.StateDelivered,
	"FAILED":    messages.StateFailed,
}

func (s *Service) handleGateway(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"medic-gateway": true})
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "use GET or POST")
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req gatewayRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
			return
		}
	}
	out, err := s.gatewayPoll(r.Context(), req)
	if err != nil {
		s.log.Error().Err(err).Msg("CHT Gateway poll failed")
		writeError(w, http.StatusInternalServerError, "could not process the poll")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out})
}

// gatewayPoll saves the incoming messages, applies the status updates and
// returns the messages to send, now marked forwarded-to-gateway.
func (s *Service) gatewayPoll(ctx context.Context, req gatewayRequest) ([]gatewayOut, error) {
	var in []Incoming
	for _, m := range req.Messages {
		id, from, content := scalarString(m.ID), scalarString(m.From), scalarString(m.Content)
		sent := m.SMSSent
		if sent == nil || sent == "" || sent == float64(0) {
			sent = nil
		}
		in = append(in, Incoming{ID: id, From: from, Content: content, SentAt: sent})
	}
	if _, err := s.saveIncoming(ctx, in); err != nil {
		return nil, err
	}
	if err := s.gatewayUpdates(ctx, req.Updates); err != nil {
		return nil, err
	}
	sn, err := s.settings(ctx)
	if err != nil {
		return nil, err
	}
	if sn.outgoingService() != ServiceGateway {
		return []gatewayOut{}, nil
	}
	return s.gatewayOutgoing(ctx, sn)
}

// scalarString is the text of a JSON string or number; "" otherwise.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return jsv.NumberString(x)
	}
	return ""
}

// gatewayUpdates applies status updates to the tasks holding each message.
func (s *Service) gatewayUpdates(ctx context.Context, ups []gatewayUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	var ids []string
	var changes []stateChange
	for _, u := range ups {
		id := scalarString(u.ID)
		if id == "" {
			continue
		}
		c := stateChange{uuid: id}
		if st, ok := gatewayStates[u.Status]; ok {
			c.state = st
			if st == messages.StateFailed {
				c.details = map[string]any{"reason": u.Reason}
			}
		} else {
			c.state = messages.StateUnrecognised
			c.details = map[string]any{"gateway_status": u.Status}
		}
		c.keepRef = true
		rows, err := s.view(ctx, "messages_by_uuid", map[string]any{"key": id})
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			s.log.Warn().Str("uuid", id).Str("status", u.Status).Msg("Status update for an unknown message")
			continue
		}
		for _, row := range rows {
			ids = append(ids, row.ID)
			changes = append(changes, c)
		}
	}
	_, err := s.applyChanges(ctx, ids, changes)
	return err
}

// gatewayOutgoing picks up to 25 messages due, oldest first, marks them
// forwarded-to-gateway and returns them with `to` normalised.
func (s *Service) gatewayOutgoing(ctx context.Context, sn *snapshot) ([]gatewayOut, error) {
	due, err := s.dueMessages(ctx, gatewayBatch, gatewayBatch, nil)
	if err != nil {
		return nil, err
	}
	out := []gatewayOut{}
	if len(due) == 0 {
		return out, nil
	}
	ids := make([]string, len(due))
	changes := make([]stateChange, len(due))
	for i, m := range due {
		ids[i] = m.docID
		changes[i] = stateChange{uuid: m.uuid, state: messages.StateForwarded, keepRef: true,
			onlyFrom: []string{messages.StatePending, messages.StateForwarded}}
	}
	docs, err := s.db.GetMany(ctx, uniq(ids))
	if err != nil {
		return nil, err
	}
	cc, pv := sn.settings.DefaultCountryCode(), sn.settings.String("phone_validation", "")
	for _, m := range due {
		doc := docs[m.docID]
		if doc == nil {
			continue
		}
		to, text, ok := sendable(doc, m.uuid, cc, pv)
		if !ok {
			continue
		}
		out = append(out, gatewayOut{ID: m.uuid, To: to, Content: text})
	}
	if _, err := s.applyChanges(ctx, ids, changes); err != nil {
		return nil, fmt.Errorf("mark messages forwarded-to-gateway: %w", err)
	}
	return out, nil
}

func uniq(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
