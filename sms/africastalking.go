package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// atCodes maps Africa's Talking recipient statusCodes (spec §7.1); codes
// absent here leave the message to be sent again.
var atCodes = map[int][2]string{
	100: {messages.StateForwardedBy, "Processed"},
	101: {messages.StateSent, "Sent"},
	102: {messages.StateReceived, "Queued"},
	401: {messages.StateFailed, "RiskHold"},
	403: {messages.StateFailed, "InvalidPhoneNumber"},
	404: {messages.StateFailed, "UnsupportedNumberType"},
	407: {messages.StateFailed, "CouldNotRoute"},
	406: {messages.StateDenied, "UserInBlacklist"},
}

// atDeliveryStates maps delivery-report statuses (spec §7.3).
var atDeliveryStates = map[string]string{
	"Sent":      messages.StateForwardedBy,
	"Submitted": messages.StateSent,
	"Buffered":  messages.StateSent,
	"Success":   messages.StateDelivered,
	"Rejected":  messages.StateFailed,
	"Failed":    messages.StateFailed,
}

// atSend sends one message (spec §7.1).
func (s *Service) atSend(ctx context.Context, endpoint, username, apiKey, from, to, text string) sendResult {
	form := url.Values{"username": {username}, "to": {to}, "message": {text}}
	if from != "" {
		form.Set("from", from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return sendResult{err: fmt.Errorf("Africa's Talking request: %w", err)}
	}
	req.Header.Set("apikey", apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.http.Do(req)
	if err != nil {
		return sendResult{err: fmt.Errorf("Africa's Talking send: %w", redactErr(err))}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return sendResult{err: fmt.Errorf("Africa's Talking send: HTTP %d", resp.StatusCode)}
	}
	var b struct {
		SMSMessageData struct {
			Message    string
			Recipients []map[string]any
		}
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return sendResult{err: fmt.Errorf("Africa's Talking send: unreadable response: %w", err)}
	}
	if len(b.SMSMessageData.Recipients) == 0 {
		return sendResult{err: fmt.Errorf("Africa's Talking send: no recipient in the answer (%q)", b.SMSMessageData.Message)}
	}
	rcp := b.SMSMessageData.Recipients[0]
	code, ok := statusCode(rcp["statusCode"])
	st, known := atCodes[code]
	if !ok || !known {
		return sendResult{err: fmt.Errorf("Africa's Talking send: status %v %s", rcp["statusCode"], jsv.String(rcp["status"]))}
	}
	c := &stateChange{state: st[0], details: st[1]}
	if id := jsv.String(rcp["messageId"]); rcp["messageId"] != nil && id != "" && id != "None" {
		c.gatewayRef, c.setRef = id, true
	}
	return sendResult{change: c}
}

// statusCode reads a statusCode sent as a number or a string.
func statusCode(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		return int(x), x == float64(int(x))
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}

// atAuthorised checks the ?key= of an AT webhook against the
// africastalking.com:incoming credential, answering 403 itself when not.
func (s *Service) atAuthorised(w http.ResponseWriter, r *http.Request) bool {
	key := r.URL.Query().Get("key")
	want, configured, err := s.secret(r.Context(), keyATIncoming)
	if err != nil {
		s.log.Error().Err(err).Msg("Could not read the Africa's Talking incoming credential")
		writeError(w, http.StatusServiceUnavailable, "could not read credentials")
		return false
	}
	if key == "" || !configured || !secretEqual(key, want) {
		writeError(w, http.StatusForbidden, "invalid key")
		return false
	}
	return true
}

// parseForm reads a form-encoded body, answering 400 or 413 itself.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, ok := readBody(w, r)
	if !ok {
		return nil, false
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed form body: "+err.Error())
		return nil, false
	}
	return vals, true
}

// handleATIncoming is AT's incoming-message callback (spec §7.2).
func (s *Service) handleATIncoming(w http.ResponseWriter, r *http.Request) {
	if !s.atAuthorised(w, r) {
		return
	}
	vals, ok := parseForm(w, r)
	if !ok {
		return
	}
	// `date` does not set reported_date (the reference ignores it).
	in := Incoming{ID: vals.Get("id"), From: vals.Get("from"), Content: vals.Get("text")}
	n, err := s.saveIncoming(r.Context(), []Incoming{in})
	if err != nil {
		s.log.Error().Err(err).Msg("Could not save an Africa's Talking message")
		writeError(w, http.StatusInternalServerError, "could not save the message")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"saved": n})
}

// handleATDelivery is AT's delivery-report callback (spec §7.3).
func (s *Service) handleATDelivery(w http.ResponseWriter, r *http.Request) {
	if !s.atAuthorised(w, r) {
		return
	}
	vals, ok := parseForm(w, r)
	if !ok {
		return
	}
	id, status := vals.Get("id"), vals.Get("status")
	state, known := atDeliveryStates[status]
	if !known {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown status %q", status))
		return
	}
	if id == "" {
		writeError(w, http.StatusBadRequest, "missing id")
		return
	}
	c := stateChange{ref: id, state: state, keepRef: true}
	if reason := vals.Get("failureReason"); reason != "" {
		c.details = reason
	}
	n, err := s.updateByRef(r.Context(), id, c)
	if err != nil {
		s.log.Error().Err(err).Msg("Could not apply an Africa's Talking delivery report")
		writeError(w, http.StatusInternalServerError, "could not save the status")
		return
	}
	if n == 0 {
		s.log.Warn().Str("gateway_ref", id).Str("status", status).Msg("Delivery report for an unknown message")
	}
	writeJSON(w, http.StatusOK, map[string]any{"saved": n})
}

// updateByRef applies c to every task whose gateway_ref is ref.
func (s *Service) updateByRef(ctx context.Context, ref string, c stateChange) (int, error) {
	rows, err := s.view(ctx, "gateway_refs", map[string]any{"key": ref})
	if err != nil {
		return 0, err
	}
	var ids []string
	var cs []stateChange
	for _, row := range rows {
		if row.Value == "out" {
			ids = append(ids, row.ID)
			cs = append(cs, c)
		}
	}
	ids = uniq(ids)
	return s.applyChanges(ctx, ids, cs[:len(ids)])
}
