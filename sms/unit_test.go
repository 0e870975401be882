package sms

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/smsparse"
)

// offlineService is a Service whose database is unreachable: for the paths
// that must answer before touching it.
func offlineService(t *testing.T, secrets mapSecrets) *Service {
	t.Helper()
	s, err := New(Options{CouchURL: "http://admin:pass@127.0.0.1:1/medic", Log: zerolog.Nop(),
		Secrets: secrets, RequestTimeout: 300 * time.Millisecond, MaxBody: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func snapshotOf(t *testing.T, settingsJSON string) *snapshot {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(settingsJSON), &m); err != nil {
		t.Fatal(err)
	}
	forms, err := smsparse.ParseForms([]byte(settingsJSON))
	if err != nil {
		t.Fatal(err)
	}
	return &snapshot{settings: config.NewSettings(m), forms: forms}
}

const formsSettings = `{"default_country_code": 254, "locale": "en",
 "forms": {"V": {"meta": {"code": "V"}, "facility_reference": "clinic",
   "fields": {"patient_id": {"type": "string", "labels": {"tiny": "id"}, "required": true},
              "clinic": {"type": "string", "labels": {"tiny": "c"}},
              "notes": {"type": "string", "labels": {"tiny": "n"}}}},
  "W": {"meta": {"code": "W"}, "fields": {"weight": {"type": "integer", "labels": {"tiny": "w"}, "required": true},
              "sex": {"type": "string", "labels": {"tiny": "s"}, "list": [["F", "Female"], ["M", "Male"]]}}}}}`

func TestBuildRecord(t *testing.T) {
	sn := snapshotOf(t, formsSettings)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	opts := &Options{Now: func() time.Time { return now }, Location: time.UTC}
	nowMs := float64(now.UnixMilli())
	tests := []struct {
		name       string
		in         Incoming
		form       string
		from       string
		fields     map[string]any
		errCodes   []string
		refid      string
		reported   float64
		smsHasForm bool
	}{
		{name: "compact", in: Incoming{ID: "g1", From: "0712345678", Content: "V 12345 ck7 feeling better"},
			form: "V", from: "+254712345678", refid: "CK7", reported: nowMs, smsHasForm: true,
			fields: map[string]any{"patient_id": "12345", "clinic": "ck7", "notes": "feeling better"}},
		{name: "textforms", in: Incoming{ID: "g2", From: "+254712345678", Content: "V #ID 12345 #N ok"},
			form: "V", from: "+254712345678", reported: nowMs, smsHasForm: true,
			fields: map[string]any{"patient_id": "12345", "clinic": nil, "notes": "ok"}},
		{name: "muvuku", in: Incoming{ID: "g3", From: "+254712345678", Content: "1!V!12345#c1#hi"},
			form: "V", from: "+254712345678", refid: "C1", reported: nowMs, smsHasForm: true,
			fields: map[string]any{"patient_id": "12345", "clinic": "c1", "notes": "hi"}},
		{name: "list label", in: Incoming{ID: "g4", From: "+254712345678", Content: "W 12 F"},
			form: "W", from: "+254712345678", reported: nowMs, smsHasForm: true,
			fields: map[string]any{"weight": float64(12), "sex": "Female"}},
		{name: "incorrect type", in: Incoming{ID: "g5", From: "+254712345678", Content: "W abc"},
			form: "W", from: "+254712345678", reported: nowMs, smsHasForm: true,
			fields:   map[string]any{"weight": nil, "sex": nil},
			errCodes: []string{smsparse.ErrCodeIncorrectType}},
		{name: "missing fields", in: Incoming{ID: "g6", From: "+254712345678", Content: "V"},
			form: "V", from: "+254712345678", reported: nowMs, smsHasForm: true,
			fields:   map[string]any{"patient_id": nil, "clinic": nil, "notes": nil},
			errCodes: []string{smsparse.ErrCodeMissingFields}},
		{name: "plain message, invalid sender kept raw", in: Incoming{ID: "g7", From: "SAFARICOM", Content: "Hello there"},
			from: "SAFARICOM", reported: nowMs, fields: map[string]any{}},
		{name: "blank text", in: Incoming{ID: "g8", From: "+254712345678", Content: "   "},
			from: "+254712345678", reported: nowMs, fields: map[string]any{}, errCodes: []string{smsparse.ErrCodeEmpty}},
		{name: "gateway sent time", in: Incoming{ID: "g9", From: "+254712345678", Content: "hi", SentAt: float64(1714550399000)},
			from: "+254712345678", reported: 1714550399000, fields: map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := buildRecord(tt.in, sn, opts)
			if doc["type"] != "data_record" || doc["_id"] != recordID(tt.in.ID) {
				t.Errorf("type/_id = %v/%v", doc["type"], doc["_id"])
			}
			if got, _ := doc["form"].(string); got != tt.form {
				t.Errorf("form = %q, want %q", got, tt.form)
			}
			if _, has := doc["form"]; !has && tt.form != "" || has && tt.form == "" {
				t.Errorf("form presence wrong: %v", doc["form"])
			}
			if doc["from"] != tt.from {
				t.Errorf("from = %v, want %v", doc["from"], tt.from)
			}
			if !reflect.DeepEqual(doc["fields"], tt.fields) {
				t.Errorf("fields = %#v, want %#v", doc["fields"], tt.fields)
			}
			var codes []string
			for _, e := range doc["errors"].([]any) {
				codes = append(codes, e.(map[string]any)["code"].(string))
			}
			if !reflect.DeepEqual(codes, tt.errCodes) {
				t.Errorf("error codes = %v, want %v", codes, tt.errCodes)
			}
			if got, _ := doc["refid"].(string); got != tt.refid {
				t.Errorf("refid = %q, want %q", got, tt.refid)
			}
			if doc["reported_date"] != tt.reported {
				t.Errorf("reported_date = %v, want %v", doc["reported_date"], tt.reported)
			}
			sm := doc["sms_message"].(map[string]any)
			if sm["message"] != tt.in.Content || sm["from"] != tt.in.From || sm["gateway_ref"] != tt.in.ID || sm["type"] != "sms_message" {
				t.Errorf("sms_message = %v", sm)
			}
			if _, has := sm["form"]; has != tt.smsHasForm {
				t.Errorf("sms_message.form = %v", sm["form"])
			}
			if !reflect.DeepEqual(doc["tasks"], []any{}) {
				t.Errorf("tasks = %v", doc["tasks"])
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		roles     []string
		permitted any
		want      bool
	}{
		{[]string{"_admin"}, nil, true},
		{[]string{"gateway"}, []any{"gateway", "other"}, true},
		{[]string{"chw"}, []any{"gateway"}, false},
		{nil, []any{"gateway"}, false},
		{[]string{"gateway"}, "gateway", false}, // malformed setting: only admins
	}
	for _, tt := range tests {
		if got := allowed(tt.roles, tt.permitted); got != tt.want {
			t.Errorf("allowed(%v, %v) = %v, want %v", tt.roles, tt.permitted, got, tt.want)
		}
	}
}

func TestRapidProURL(t *testing.T) {
	tests := []struct{ base, want string }{
		{"https://textit.in", "https://textit.in/api/v2/broadcasts.json"},
		{"https://textit.in/", "https://textit.in/api/v2/broadcasts.json"},
		{"https://example.org//rp//", "https://example.org/rp/api/v2/broadcasts.json"},
		{"ftp://x", ""},
		{"not a url", ""},
	}
	for _, tt := range tests {
		got, err := rapidProURL(tt.base, "/api/v2/broadcasts.json")
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q: want an error, got %q", tt.base, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %q, %v; want %q", tt.base, got, err, tt.want)
		}
	}
}

func TestATSend(t *testing.T) {
	s := offlineService(t, nil)
	tests := []struct {
		name    string
		respond func(to string, n int) (int, string)
		delay   time.Duration
		key     string
		state   string
		details string
		ref     any
	}{
		{name: "101 sent", state: "sent", details: "Sent", ref: "ATXid_1"},
		{name: "100 as a string", respond: func(to string, n int) (int, string) {
			return 201, atBody(to, "100", "Processed", "ATXid_p")
		}, state: "forwarded-by-gateway", details: "Processed", ref: "ATXid_p"},
		{name: "102 queued", respond: func(to string, n int) (int, string) { return 201, atBody(to, 102, "Queued", "q1") },
			state: "received-by-gateway", details: "Queued", ref: "q1"},
		{name: "403 invalid number", respond: func(to string, n int) (int, string) {
			return 201, atBody(to, 403, "InvalidPhoneNumber", "None")
		}, state: "failed", details: "InvalidPhoneNumber"},
		{name: "406 blacklist", respond: func(to string, n int) (int, string) { return 201, atBody(to, 406, "UserInBlacklist", "None") },
			state: "denied", details: "UserInBlacklist"},
		{name: "405 balance: retry", respond: func(to string, n int) (int, string) {
			return 201, atBody(to, 405, "InsufficientBalance", "None")
		}},
		{name: "unknown code: retry", respond: func(to string, n int) (int, string) { return 201, atBody(to, 999, "Odd", "x") }},
		{name: "no recipient: retry", respond: func(to string, n int) (int, string) {
			return 201, `{"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}`
		}},
		{name: "HTTP 500: retry", respond: func(to string, n int) (int, string) { return 500, "oops" }},
		{name: "unparsable: retry", respond: func(to string, n int) (int, string) { return 201, "<xml/>" }},
		{name: "wrong key: retry", key: "wrong"},
		{name: "timeout: retry", delay: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newATEmulator(t, "k3y")
			e.respond, e.delay = tt.respond, tt.delay
			key := "k3y"
			if tt.key != "" {
				key = tt.key
			}
			res := s.atSend(context.Background(), e.URL+"/version1/messaging", "myapp", key, "", "+254712345678", "Thank you Mary.")
			if tt.state == "" {
				if res.change != nil || res.err == nil {
					t.Fatalf("want a retryable error, got %+v", res)
				}
				if strings.Contains(res.err.Error(), key) {
					t.Errorf("error leaks the key: %v", res.err)
				}
				return
			}
			if res.change == nil {
				t.Fatalf("no change: %v", res.err)
			}
			c := res.change
			if c.state != tt.state || c.details != tt.details || (tt.ref != nil) != c.setRef || (tt.ref != nil && c.gatewayRef != tt.ref) {
				t.Errorf("change = %+v", c)
			}
			reqs := e.requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %v", reqs)
			}
			want := map[string]string{"username": "myapp", "to": "+254712345678", "message": "Thank you Mary."}
			if !reflect.DeepEqual(reqs[0], want) {
				t.Errorf("form = %v, want %v (no `from` when reply_to is unset)", reqs[0], want)
			}
		})
	}
}

func TestATSendFrom(t *testing.T) {
	s := offlineService(t, nil)
	e := newATEmulator(t, "k")
	s.atSend(context.Background(), e.URL+"/version1/messaging", "sandbox", "k", "20414", "+254712345678", "x")
	if got := e.requests(); len(got) != 1 || got[0]["from"] != "20414" {
		t.Errorf("requests = %v", got)
	}
}

func TestRapidProSend(t *testing.T) {
	s := offlineService(t, nil)
	tests := []struct {
		name       string
		sendStatus int
		token      string
		delay      time.Duration
		state      string
		details    string
		wantRef    bool
	}{
		{name: "queued", state: "received-by-gateway", details: "Queued", wantRef: true},
		{name: "400: failed, never resent", sendStatus: 400, state: "failed", details: "Failed"},
		{name: "empty 2xx: resent", sendStatus: 201},
		{name: "429: resent", sendStatus: 429},
		{name: "500: resent", sendStatus: 500},
		{name: "bad token: resent", token: "nope"},
		{name: "timeout: resent", delay: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRapidProEmulator(t, "tok")
			e.sendStatus, e.delay = tt.sendStatus, tt.delay
			token := "tok"
			if tt.token != "" {
				token = tt.token
			}
			res := s.rapidProSend(context.Background(), e.URL+"/", token, "+254712345678", "Thank you Mary.")
			if tt.state == "" {
				if res.change != nil || res.err == nil {
					t.Fatalf("want a retryable error, got %+v", res)
				}
				return
			}
			if res.change == nil {
				t.Fatalf("no change: %v", res.err)
			}
			c := res.change
			if c.state != tt.state || c.details != tt.details || c.setRef != tt.wantRef {
				t.Errorf("change = %+v", c)
			}
			if tt.wantRef {
				if c.gatewayRef != float64(81234) {
					t.Errorf("gateway_ref = %#v, want the number 81234", c.gatewayRef)
				}
				b := e.sent()
				if len(b) != 1 || !reflect.DeepEqual(b[0], map[string]any{"urns": []any{"tel:+254712345678"}, "text": "Thank you Mary."}) {
					t.Errorf("broadcasts = %v", b)
				}
			}
		})
	}
}

func TestRapidProStatus(t *testing.T) {
	s := offlineService(t, nil)
	e := newRapidProEmulator(t, "tok")
	e.setStatus(5, "delivered")
	if st, err := s.rapidProStatus(context.Background(), e.URL, "tok", "5"); err != nil || st != "delivered" {
		t.Errorf("status = %q, %v", st, err)
	}
	if st, err := s.rapidProStatus(context.Background(), e.URL, "tok", "6"); err != nil || st != "" {
		t.Errorf("unknown broadcast: %q, %v", st, err)
	}
	e.pollStatus = 429
	if _, err := s.rapidProStatus(context.Background(), e.URL, "tok", "5"); !errors.Is(err, errRateLimited) {
		t.Errorf("429: %v", err)
	}
}

func TestSetStateRefs(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	task := map[string]any{"state": "pending", "state_history": []any{map[string]any{"state": "pending"}}}
	if !setState(task, "received-by-gateway", "Queued", float64(81234), true, now) {
		t.Fatal("first set: no change")
	}
	if task["gateway_ref"] != float64(81234) {
		t.Errorf("gateway_ref = %#v", task["gateway_ref"])
	}
	if setState(task, "received-by-gateway", "Queued", float64(81234), true, now) {
		t.Error("same state, details and numeric ref: want no change")
	}
	if !setState(task, "sent", "Sent", task["gateway_ref"], true, now) {
		t.Error("new state: want a change")
	}
	if n := len(task["state_history"].([]any)); n != 3 {
		t.Errorf("history has %d entries, want 3", n)
	}
}

func TestApplyGatewayStatuses(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	doc := map[string]any{"tasks": []any{
		map[string]any{"state": "forwarded-to-gateway", "messages": []any{map[string]any{"uuid": "a", "to": "+1", "message": "x"}}},
		map[string]any{"state": "forwarded-to-gateway", "messages": []any{map[string]any{"uuid": "b", "to": "+1", "message": "x"}}},
	}, "scheduled_tasks": []any{
		map[string]any{"state": "forwarded-to-gateway", "gateway_ref": "keep", "messages": []any{map[string]any{"uuid": "c"}}},
	}}
	found, changed := applyToTasks(doc, []stateChange{
		{uuid: "a", state: "failed", details: map[string]any{"reason": "no credit"}, keepRef: true},
		{uuid: "b", state: "unrecognised", details: map[string]any{"gateway_status": "WEIRD"}, keepRef: true},
		{uuid: "c", state: "sent", keepRef: true},
		{uuid: "zzz", state: "sent"},
	}, now)
	if found != 3 || !changed {
		t.Fatalf("found %d changed %v", found, changed)
	}
	a := doc["tasks"].([]any)[0].(map[string]any)
	if a["state"] != "failed" || !reflect.DeepEqual(a["state_details"], map[string]any{"reason": "no credit"}) {
		t.Errorf("a = %v", a)
	}
	c := doc["scheduled_tasks"].([]any)[0].(map[string]any)
	if c["state"] != "sent" || c["gateway_ref"] != "keep" {
		t.Errorf("c = %v", c)
	}
	// Handing out a message that got a status meanwhile does not move it back.
	_, changed = applyToTasks(doc, []stateChange{{uuid: "c", state: "forwarded-to-gateway", keepRef: true,
		onlyFrom: []string{"pending", "forwarded-to-gateway"}}}, now)
	if changed || c["state"] != "sent" {
		t.Errorf("guarded change applied: %v", c)
	}
}

func TestBackoff(t *testing.T) {
	s := offlineService(t, nil)
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := s.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

// TestWebhookChecks covers the answers given before the database is used:
// authentication, body size and malformed payloads.
func TestWebhookChecks(t *testing.T) {
	s := offlineService(t, mapSecrets{keyRapidProIncoming: "rp-secret", keyATIncoming: "at-secret"})
	h := s.Handler()
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name, method, path, auth, body string
		basic                          bool
		want                           int
	}{
		{"gateway without credentials", "GET", "/api/sms", "", "", false, 401},
		{"gateway with a token header", "POST", "/api/sms", "Token x", "{}", false, 401},
		{"rapidpro without Authorization", "POST", "/api/v2/sms/rapidpro/incoming-messages", "", `{"id":"1"}`, false, 403},
		{"rapidpro with basic auth", "POST", "/api/v2/sms/rapidpro/incoming-messages", "", `{"id":"1"}`, true, 403},
		{"rapidpro wrong token", "POST", "/api/v2/sms/rapidpro/incoming-messages", "Token nope", `{"id":"1"}`, false, 403},
		{"rapidpro old path wrong token", "POST", "/api/v1/sms/radpidpro/incoming-messages", "Token nope", `{}`, false, 403},
		{"rapidpro no body", "POST", "/api/v2/sms/rapidpro/incoming-messages", "Token rp-secret", "", false, 400},
		{"rapidpro malformed JSON", "POST", "/api/v2/sms/rapidpro/incoming-messages", "Token rp-secret", `{"id":`, false, 400},
		{"rapidpro body too large", "POST", "/api/v2/sms/rapidpro/incoming-messages", "Token rp-secret", `{"id":"` + big + `"}`, false, 413},
		{"rapidpro GET", "GET", "/api/v2/sms/rapidpro/incoming-messages", "Token rp-secret", "", false, 405},
		{"AT incoming without key", "POST", "/api/v1/sms/africastalking/incoming-messages", "", "id=1", false, 403},
		{"AT incoming wrong key", "POST", "/api/v1/sms/africastalking/incoming-messages?key=nope", "", "id=1", false, 403},
		{"AT delivery wrong key", "POST", "/api/v1/sms/africastalking/delivery-reports?key=nope", "", "id=1", false, 403},
		{"AT delivery malformed form", "POST", "/api/v1/sms/africastalking/delivery-reports?key=at-secret", "", "id=%zz", false, 400},
		{"AT delivery unknown status", "POST", "/api/v1/sms/africastalking/delivery-reports?key=at-secret", "", "id=1&status=success", false, 400},
		{"AT delivery too large", "POST", "/api/v1/sms/africastalking/delivery-reports?key=at-secret", "", "id=" + big, false, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.basic {
				req.SetBasicAuth("admin", "pass")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Errorf("status = %d, want %d (%s)", w.Code, tt.want, w.Body.String())
			}
			if w.Code >= 400 && w.Code != 405 && !strings.Contains(w.Header().Get("Content-Type"), "json") {
				t.Errorf("error answer is not JSON: %q", w.Body.String())
			}
		})
	}
}

func TestRapidProWebhookNotConfigured(t *testing.T) {
	s := offlineService(t, mapSecrets{})
	req := httptest.NewRequest("POST", "/api/v2/sms/rapidpro/incoming-messages", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Token anything")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Errorf("status = %d, want 403", w.Code)
	}
}

// TestDefaultSecretsFromEnvironment: without Options.Secrets the service
// uses outbound.NewSecrets, whose first source is SENTINEL_SECRET_<KEY>.
func TestDefaultSecretsFromEnvironment(t *testing.T) {
	t.Setenv("SENTINEL_SECRET_RAPIDPRO_INCOMING", "from-env")
	s, err := New(Options{CouchURL: "http://admin:pass@127.0.0.1:1/medic", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for token, want := range map[string]int{"from-env": 400, "other": 403} {
		req := httptest.NewRequest("POST", "/api/v2/sms/rapidpro/incoming-messages", nil)
		req.Header.Set("Authorization", "Token "+token)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != want { // 400: authenticated, then "no body"
			t.Errorf("token %s: %d, want %d", token, w.Code, want)
		}
	}
}

// TestSettingsFromTheDaemonsConfig: with Options.Settings (the daemon's
// config in force), the SMS paths read those settings, rebuilt only when a
// reload swaps a new config in, and never the settings doc (nor a cache of
// their own): here the server cannot even be reached.
func TestSettingsFromTheDaemonsConfig(t *testing.T) {
	first := config.NewSettings(map[string]any{"sms": map[string]any{"outgoing_service": "rapidpro"}})
	first.JSON = []byte(`{"sms": {"outgoing_service": "rapidpro"}, "forms": {"P": {"meta": {"code": "P"}, "fields": {}}}}`)
	cur := first
	s, err := New(Options{CouchURL: "http://admin:pass@127.0.0.1:1/medic", Settings: func() *config.Settings { return cur }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sn, err := s.settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sn.outgoingService() != "rapidpro" || sn.settings != first {
		t.Fatalf("snapshot %+v, want the config's settings", sn)
	}
	if again, _ := s.settings(ctx); again != sn {
		t.Error("the snapshot was rebuilt without a reload")
	}
	cur = config.NewSettings(map[string]any{})
	cur.JSON = []byte(`{}`)
	sn, err = s.settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sn.outgoingService() != ServiceGateway {
		t.Errorf("after the reload: %q, want the gateway default", sn.outgoingService())
	}
}
