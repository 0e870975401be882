package sms

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"sentinel-go/messages"
)

// Credential keys (spec §6.1, §7): stored in CHT's vault or given to the
// daemon as SENTINEL_SECRET_<KEY> / in the secrets file.
const (
	keyRapidProOutgoing = "rapidpro:outgoing"
	keyRapidProIncoming = "rapidpro:incoming"
	keyATOutgoing       = "africastalking.com:outgoing"
	keyATIncoming       = "africastalking.com:incoming"
)

// secret reads a credential; ok false when it is not configured.
func (s *Service) secret(ctx context.Context, key string) (string, bool, error) {
	v, ok, err := s.secrets.Secret(ctx, key)
	if err != nil {
		return "", false, fmt.Errorf("read credential %s: %w", key, err)
	}
	return v, ok && v != "", nil
}

// secretEqual compares in constant time.
func secretEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// handleRapidProIncoming is RapidPro's flow webhook (spec §6.4).
func (s *Service) handleRapidProIncoming(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
	if !ok || strings.TrimSpace(token) == "" {
		writeError(w, http.StatusForbidden, "missing Authorization: Token header")
		return
	}
	want, configured, err := s.secret(r.Context(), keyRapidProIncoming)
	if err != nil {
		s.log.Error().Err(err).Msg("Could not read the RapidPro incoming credential")
		writeError(w, http.StatusServiceUnavailable, "could not read credentials")
		return
	}
	if !configured || !secretEqual(strings.TrimSpace(token), want) {
		writeError(w, http.StatusForbidden, "invalid token")
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, http.StatusBadRequest, "no request body")
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return
	}
	// `from` should be the tel URN's path; a whole URN is accepted too.
	from := strings.TrimPrefix(scalarString(m["from"]), "tel:")
	in := Incoming{ID: scalarString(m["id"]), From: from, Content: scalarString(m["content"])}
	n, err := s.saveIncoming(r.Context(), []Incoming{in})
	if err != nil {
		s.log.Error().Err(err).Msg("Could not save a RapidPro message")
		writeError(w, http.StatusInternalServerError, "could not save the message")
		return
	}
	if n == 0 {
		writeError(w, http.StatusBadRequest, "Message was not saved")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"saved": n})
}

// rapidProStates maps RapidPro message statuses (spec §6.3).
var rapidProStates = map[string][2]string{
	"queued":    {messages.StateReceived, "Queued"},
	"wired":     {messages.StateForwardedBy, "Wired"},
	"sent":      {messages.StateSent, "Sent"},
	"resent":    {messages.StateSent, "Resent"},
	"delivered": {messages.StateDelivered, "Delivered"},
	"errored":   {messages.StateReceived, "Errored"},
	"failed":    {messages.StateFailed, "Failed"},
}

var multiSlash = regexp.MustCompile(`/{2,}`)

// rapidProURL appends path to the configured base URL, collapsing repeated
// slashes of the path (spec §6).
func rapidProURL(base, path string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("sms.rapidpro.url is not an http(s) URL")
	}
	u.Path = multiSlash.ReplaceAllString(u.Path+"/"+path, "/")
	return u.String(), nil
}

// rapidProBase is sms.rapidpro.url, else the seed's top-level rapidpro.url.
func rapidProBase(sn *snapshot) string {
	if u := sn.settings.String("sms.rapidpro.url", ""); u != "" {
		return u
	}
	return sn.settings.String("rapidpro.url", "")
}

// sendResult is a provider's answer to one send.
type sendResult struct {
	// change is the state to set; nil: no change, the message is retried.
	change *stateChange
	// err explains a retryable failure (logged, counts an attempt).
	err error
}

// rapidProSend sends one message as a broadcast (spec §6.2).
func (s *Service) rapidProSend(ctx context.Context, base, token, to, text string) sendResult {
	endpoint, err := rapidProURL(base, "/api/v2/broadcasts.json")
	if err != nil {
		return sendResult{err: err}
	}
	body, _ := json.Marshal(map[string]any{"urns": []string{"tel:" + to}, "text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return sendResult{err: fmt.Errorf("RapidPro request: %w", err)}
	}
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return sendResult{err: fmt.Errorf("RapidPro broadcast: %w", redactErr(err))}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusBadRequest {
		return sendResult{change: &stateChange{state: messages.StateFailed, details: "Failed"}}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return sendResult{err: fmt.Errorf("RapidPro broadcast: HTTP %d", resp.StatusCode)}
	}
	var b struct {
		ID     any    `json:"id"`
		Status string `json:"status"`
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return sendResult{err: errors.New("RapidPro broadcast: empty response")}
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return sendResult{err: fmt.Errorf("RapidPro broadcast: unreadable response: %w", err)}
	}
	st, ok := rapidProStates[b.Status]
	if !ok {
		st = [2]string{messages.StateReceived, "Queued"}
	}
	c := &stateChange{state: st[0], details: st[1]}
	if b.ID != nil {
		c.gatewayRef, c.setRef = b.ID, true
	}
	return sendResult{change: c}
}

// errRateLimited stops a polling run (RapidPro answered 429).
var errRateLimited = errors.New("RapidPro rate limit (HTTP 429)")

// rapidProStatus asks the status of a broadcast (spec §6.3). It returns
// "" when there is no answer to act on.
func (s *Service) rapidProStatus(ctx context.Context, base, token, ref string) (string, error) {
	endpoint, err := rapidProURL(base, "/api/v2/messages.json")
	if err != nil {
		return "", err
	}
	endpoint += "?broadcast=" + url.QueryEscape(ref)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return "", fmt.Errorf("RapidPro request: %w", err)
	}
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("RapidPro messages: %w", redactErr(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusTooManyRequests {
		return "", errRateLimited
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("RapidPro messages: HTTP %d", resp.StatusCode)
	}
	var b struct {
		Results []struct {
			Status string `json:"status"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return "", fmt.Errorf("RapidPro messages: unreadable response: %w", err)
	}
	if len(b.Results) == 0 {
		return "", nil
	}
	return b.Results[0].Status, nil
}

// redactErr drops the URL from a transport error (it may carry a query
// with a secret on other providers); the cause stays.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
