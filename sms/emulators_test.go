package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// mapSecrets is an in-memory outbound.SecretStore.
type mapSecrets map[string]string

func (m mapSecrets) Secret(_ context.Context, key string) (string, bool, error) {
	v, ok := m[key]
	return v, ok, nil
}

// atEmulator follows Africa's Talking's public SMS API: POST
// /version1/messaging, `apiKey` header, form-encoded username/to/message/
// from, a JSON SMSMessageData answer (application/json when asked).
type atEmulator struct {
	*httptest.Server
	key string
	mu  sync.Mutex
	// reqs are the form bodies received.
	reqs []map[string]string
	// respond gives the answer per recipient; nil: 101 Success.
	respond func(to string, n int) (httpStatus int, body string)
	delay   time.Duration
	// inflight and maxInflight count concurrent sends.
	inflight, maxInflight int
}

func newATEmulator(t *testing.T, key string) *atEmulator {
	e := &atEmulator{key: key}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/version1/messaging" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if r.Header.Get("apiKey") != e.key {
			http.Error(w, "The supplied authentication is invalid", http.StatusUnauthorized)
			return
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			http.Error(w, "bad content type", http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		got := map[string]string{}
		for k := range r.PostForm {
			got[k] = r.PostForm.Get(k)
		}
		if got["username"] == "" || got["to"] == "" || got["message"] == "" {
			http.Error(w, "Request is missing required form field", http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		e.reqs = append(e.reqs, got)
		n := len(e.reqs)
		respond, delay := e.respond, e.delay
		e.inflight++
		e.maxInflight = max(e.maxInflight, e.inflight)
		e.mu.Unlock()
		defer func() {
			e.mu.Lock()
			e.inflight--
			e.mu.Unlock()
		}()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		status, body := http.StatusCreated, ""
		if respond != nil {
			status, body = respond(got["to"], n)
			if status == 0 {
				status = http.StatusCreated
			}
		}
		if body == "" {
			body = atBody(got["to"], 101, "Success", fmt.Sprintf("ATXid_%d", n))
		}
		if r.Header.Get("Accept") == "application/json" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(e.Close)
	return e
}

// atBody is a send answer for one recipient.
func atBody(to string, code any, status, id string) string {
	b, _ := json.Marshal(map[string]any{"SMSMessageData": map[string]any{
		"Message": "Sent to 1/1 Total Cost: KES 0.8000",
		"Recipients": []any{map[string]any{"statusCode": code, "number": to, "status": status,
			"cost": "KES 0.8000", "messageId": id}},
	}})
	return string(b)
}

func (e *atEmulator) requests() []map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]map[string]string(nil), e.reqs...)
}

// rapidProEmulator follows RapidPro's public API v2: `Authorization: Token
// <token>`; POST /api/v2/broadcasts.json {urns, text} → 201 with the
// broadcast; GET /api/v2/messages.json?broadcast=<id> → {next, previous,
// results}.
type rapidProEmulator struct {
	*httptest.Server
	token string
	mu    sync.Mutex
	// broadcasts are the bodies received.
	broadcasts []map[string]any
	// statuses are the message statuses by broadcast id.
	statuses map[int]string
	polls    int
	// sendStatus overrides the answer to a broadcast (0: 201).
	sendStatus int
	// pollStatus overrides the answer to a poll (0: 200).
	pollStatus int
	delay      time.Duration
}

func newRapidProEmulator(t *testing.T, token string) *rapidProEmulator {
	e := &rapidProEmulator{token: token, statuses: map[int]string{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Token "+e.token {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"detail": "Invalid token"}`))
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v2/broadcasts.json":
			var b map[string]any
			if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
				http.Error(w, `{"non_field_errors": ["Invalid JSON"]}`, http.StatusBadRequest)
				return
			}
			if e.delay > 0 {
				e.mu.Unlock()
				time.Sleep(e.delay)
				e.mu.Lock()
			}
			if e.sendStatus != 0 {
				w.WriteHeader(e.sendStatus)
				if e.sendStatus == http.StatusBadRequest {
					_, _ = w.Write([]byte(`{"urns": ["Invalid URN"]}`))
				}
				return
			}
			e.broadcasts = append(e.broadcasts, b)
			id := 81233 + len(e.broadcasts)
			e.statuses[id] = "queued"
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "urns": b["urns"], "contacts": []any{},
				"groups": []any{}, "text": map[string]any{"eng": b["text"]}, "status": "queued",
				"created_on": "2026-12-07T01:00:00.000000Z"})
		case r.Method == http.MethodGet && r.URL.Path == "/api/v2/messages.json":
			e.polls++
			if e.pollStatus != 0 {
				w.WriteHeader(e.pollStatus)
				return
			}
			var id int
			_, _ = fmt.Sscan(r.URL.Query().Get("broadcast"), &id)
			results := []any{}
			if st, ok := e.statuses[id]; ok {
				results = append(results, map[string]any{"id": id * 10, "broadcast": id, "status": st, "direction": "out"})
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"next": nil, "previous": nil, "results": results})
		default:
			http.Error(w, "not found", http.StatusNotFound)
		}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *rapidProEmulator) setStatus(id int, st string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.statuses[id] = st
}

func (e *rapidProEmulator) sent() []map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]map[string]any(nil), e.broadcasts...)
}
