package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
)

// testEnv is a fresh main db with the SMS API served on it.
type testEnv struct {
	*couchtest.Env
	svc *Service
	api *httptest.Server
	// clock is the service's clock (tests advance it).
	clock *testClock
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestEnv(t *testing.T, settings map[string]any, secrets mapSecrets, tweak func(*Options)) *testEnv {
	t.Helper()
	env := couchtest.New(t)
	env.Save(t, env.MainDB, map[string]any{"_id": "settings", "settings": settings})
	clock := &testClock{t: time.Now()}
	opts := Options{CouchURL: env.URL, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Secrets: secrets, SettingsMaxAge: 20 * time.Millisecond, Now: clock.Now, RequestTimeout: 2 * time.Second}
	if tweak != nil {
		tweak(&opts)
	}
	svc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		api.Close()
		_ = svc.Close()
	})
	return &testEnv{Env: env, svc: svc, api: api, clock: clock}
}

// server is the CouchDB server URL without credentials.
func (e *testEnv) server(t *testing.T) string {
	u, err := url.Parse(e.Server)
	if err != nil {
		t.Fatal(err)
	}
	u.User = nil
	return u.String()
}

// createUser adds a CouchDB user (the test server's _users db).
func (e *testEnv) createUser(t *testing.T, name, pass string, roles ...string) {
	t.Helper()
	if roles == nil {
		roles = []string{}
	}
	err := couchtest.Request(http.MethodPut, e.Server+"/_users/org.couchdb.user:"+name,
		map[string]any{"name": name, "password": pass, "roles": roles, "type": "user"}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// call makes a request to the SMS API and decodes the JSON answer.
func (e *testEnv) call(t *testing.T, method, path string, user, pass string, header map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.api.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// poll is one CHT Gateway poll as an admin.
func (e *testEnv) poll(t *testing.T, req map[string]any) []any {
	t.Helper()
	b, _ := json.Marshal(req)
	code, out := e.call(t, "POST", "/api/sms", "admin", "pass", map[string]string{"Content-Type": "application/json"}, string(b))
	if code != 200 {
		t.Fatalf("poll: %d %v", code, out)
	}
	msgs, ok := out["messages"].([]any)
	if !ok {
		t.Fatalf("poll answer without messages: %v", out)
	}
	return msgs
}

// records returns the data_records of the main db.
func (e *testEnv) records(t *testing.T) []map[string]any {
	t.Helper()
	rows, err := e.svc.db.AllDocs(context.Background(), map[string]any{"include_docs": true})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, r := range rows {
		if r.Doc["type"] == "data_record" && r.Doc["sms_message"] != nil {
			out = append(out, r.Doc)
		}
	}
	return out
}

func (e *testEnv) task(t *testing.T, docID string, i int) map[string]any {
	t.Helper()
	doc := e.Get(t, e.MainDB, docID)
	if doc == nil {
		t.Fatalf("no doc %s", docID)
	}
	return doc["tasks"].([]any)[i].(map[string]any)
}

func pendingTask(uuid, to, text string, due time.Time, state string) map[string]any {
	return map[string]any{
		"messages":      []any{map[string]any{"uuid": uuid, "to": to, "message": text}},
		"state":         state,
		"due":           due.UTC().Format("2006-01-02T15:04:05.000Z"),
		"state_history": []any{map[string]any{"state": state, "timestamp": due.UTC().Format("2006-01-02T15:04:05.000Z")}},
	}
}

func baseSettings() map[string]any {
	return map[string]any{
		"default_country_code": 254,
		"permissions":          map[string]any{"can_access_gateway_api": []any{"gateway"}},
		"forms": map[string]any{"V": map[string]any{"meta": map[string]any{"code": "V"},
			"fields": map[string]any{"patient_id": map[string]any{"type": "string", "labels": map[string]any{"tiny": "id"}, "required": true}}}},
	}
}

func TestGatewayAuthentication(t *testing.T) {
	e := newTestEnv(t, baseSettings(), nil, nil)
	suffix := strings.ToLower(e.MainDB)
	gw, chw := "gw"+suffix, "chw"+suffix
	e.createUser(t, gw, "gwpass", "gateway")
	e.createUser(t, chw, "chwpass", "chw")
	tests := []struct {
		name, user, pass, method string
		want                     int
	}{
		{"no credentials", "", "", "GET", 401},
		{"wrong password", gw, "nope", "GET", 401},
		{"unknown user", "nobody" + suffix, "x", "POST", 401},
		{"user without the role", chw, "chwpass", "GET", 403},
		{"user without the role, POST", chw, "chwpass", "POST", 403},
		{"gateway role", gw, "gwpass", "GET", 200},
		{"server admin", "admin", "pass", "GET", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := e.call(t, tt.method, "/api/sms", tt.user, tt.pass, nil, "{}")
			if code != tt.want {
				t.Fatalf("status %d, want %d: %v", code, tt.want, out)
			}
			if code == 200 && tt.method == "GET" && out["medic-gateway"] != true {
				t.Errorf("GET answer = %v", out)
			}
		})
	}
	// The permission is re-read from the settings doc: removing the role
	// locks the gateway user out without a restart.
	doc := e.Get(t, e.MainDB, "settings")
	doc["settings"].(map[string]any)["permissions"] = map[string]any{"can_access_gateway_api": []any{}}
	e.Save(t, e.MainDB, doc)
	time.Sleep(30 * time.Millisecond)
	e.clock.Add(time.Second)
	if code, _ := e.call(t, "GET", "/api/sms", gw, "gwpass", nil, ""); code != 403 {
		t.Errorf("after removing the role: %d, want 403", code)
	}
}

func TestGatewayIncoming(t *testing.T) {
	e := newTestEnv(t, baseSettings(), nil, nil)
	// A task whose aggregator id is "out-1": an incoming SMS with that id is
	// one of our own messages coming back.
	e.Save(t, e.MainDB, map[string]any{"_id": "r0", "type": "data_record", "tasks": []any{
		map[string]any{"state": "sent", "gateway_ref": "out-1", "messages": []any{map[string]any{"uuid": "u0", "to": "+254712345678", "message": "hi"}}}}})
	msgs := e.poll(t, map[string]any{"messages": []any{
		map[string]any{"id": "m1", "from": "0712345678", "content": "V 12345", "sms_sent": 1714550399000.0, "sms_received": 1714550400000.0},
		map[string]any{"id": "m1", "from": "0712345678", "content": "V 12345"},
		map[string]any{"id": "m2", "from": "0712345678"},
		map[string]any{"from": "0712345678", "content": "no id"},
		map[string]any{"id": "out-1", "from": "0712345678", "content": "loop"},
	}})
	if len(msgs) != 0 {
		t.Errorf("messages out = %v", msgs)
	}
	recs := e.records(t)
	if len(recs) != 1 {
		t.Fatalf("records = %v", recs)
	}
	r := recs[0]
	if r["form"] != "V" || r["from"] != "+254712345678" || r["reported_date"] != 1714550399000.0 ||
		r["fields"].(map[string]any)["patient_id"] != "12345" {
		t.Errorf("record = %v", r)
	}
	sm := r["sms_message"].(map[string]any)
	if sm["gateway_ref"] != "m1" || sm["from"] != "0712345678" || sm["message"] != "V 12345" || sm["form"] != "V" {
		t.Errorf("sms_message = %v", sm)
	}
	// Re-sent by the gateway (it did not get our answer): de-duplicated.
	e.poll(t, map[string]any{"messages": []any{map[string]any{"id": "m1", "from": "0712345678", "content": "V 12345"}}})
	if n := len(e.records(t)); n != 1 {
		t.Errorf("%d records after a re-send, want 1", n)
	}
	// Malformed payloads: 400, nothing stored.
	for _, body := range []string{`{"messages": "x"}`, `not json`, `{"messages": [{"id": "m9", "from": "1", "content": "x"}], "updates": {}}`} {
		code, out := e.call(t, "POST", "/api/sms", "admin", "pass", nil, body)
		if code != 400 || out["error"] == nil {
			t.Errorf("%s: %d %v", body, code, out)
		}
	}
	if n := len(e.records(t)); n != 1 {
		t.Errorf("%d records after malformed posts, want 1", n)
	}
}

func TestGatewayOutgoingAndUpdates(t *testing.T) {
	e := newTestEnv(t, baseSettings(), nil, nil)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var docs []map[string]any
	for i := range 30 {
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("d%02d", i), "type": "data_record",
			"tasks": []any{pendingTask(fmt.Sprintf("u%02d", i), "0712345678", fmt.Sprintf("msg %d", i), base.Add(time.Duration(30-i)*time.Hour), "pending")}})
	}
	docs = append(docs,
		// never handed out: an error instead of a text, or not due
		map[string]any{"_id": "err", "type": "data_record", "tasks": []any{map[string]any{"state": "pending",
			"messages": []any{map[string]any{"uuid": "uerr", "to": "+254712345678", "error": "messages.errors.message.empty"}}}}},
		map[string]any{"_id": "sch", "type": "data_record", "scheduled_tasks": []any{pendingTask("usch", "+254712345678", "later", base, "scheduled")}},
	)
	e.Save(t, e.MainDB, docs...)
	out := e.poll(t, map[string]any{})
	if len(out) != 25 {
		t.Fatalf("%d messages, want 25", len(out))
	}
	first := out[0].(map[string]any)
	if first["id"] != "u29" || first["to"] != "+254712345678" || first["content"] != "msg 29" {
		t.Errorf("first (oldest due) = %v", first)
	}
	if last := out[24].(map[string]any); last["id"] != "u05" {
		t.Errorf("25th = %v", last)
	}
	task := e.task(t, "d29", 0)
	if task["state"] != "forwarded-to-gateway" || len(task["state_history"].([]any)) != 2 {
		t.Errorf("handed-out task = %v", task)
	}
	// Still no status: handed out again, with the 5 newer ones now.
	if again := e.poll(t, map[string]any{}); len(again) != 25 || again[0].(map[string]any)["id"] != "u29" {
		t.Errorf("second poll: %d, first %v", len(again), again[0])
	}
	if n := len(e.task(t, "d29", 0)["state_history"].([]any)); n != 2 {
		t.Errorf("re-handing out added history: %d entries", n)
	}
	// The gateway timeline of seed 003, then the other statuses.
	steps := []struct {
		uuid, status, reason, state string
		details                     any
	}{
		{"u29", "UNSENT", "", "received-by-gateway", nil},
		{"u29", "PENDING", "", "forwarded-by-gateway", nil},
		{"u29", "SENT", "", "sent", nil},
		{"u29", "DELIVERED", "", "delivered", nil},
		{"u28", "FAILED", "no credit", "failed", map[string]any{"reason": "no credit"}},
		{"u27", "WHATEVER", "", "unrecognised", map[string]any{"gateway_status": "WHATEVER"}},
	}
	for _, s := range steps {
		up := map[string]any{"id": s.uuid, "status": s.status}
		if s.reason != "" {
			up["reason"] = s.reason
		}
		e.poll(t, map[string]any{"updates": []any{up, map[string]any{"id": "unknown-uuid", "status": "SENT"}}})
		id := "d" + strings.TrimPrefix(s.uuid, "u")
		task := e.task(t, id, 0)
		if task["state"] != s.state || fmt.Sprint(task["state_details"]) != fmt.Sprint(s.details) {
			t.Errorf("%s %s: task = %v", s.uuid, s.status, task)
		}
	}
	hist := e.task(t, "d29", 0)["state_history"].([]any)
	var states []string
	for _, h := range hist {
		states = append(states, h.(map[string]any)["state"].(string))
	}
	if got := strings.Join(states, ","); got != "pending,forwarded-to-gateway,received-by-gateway,forwarded-by-gateway,sent,delivered" {
		t.Errorf("history = %s", got)
	}
	// The same status reported twice writes nothing.
	rev := e.Get(t, e.MainDB, "d29")["_rev"]
	e.poll(t, map[string]any{"updates": []any{map[string]any{"id": "u29", "status": "DELIVERED"}}})
	if e.Get(t, e.MainDB, "d29")["_rev"] != rev {
		t.Error("a repeated status rewrote the doc")
	}
	// Another outgoing service: the gateway gets nothing.
	doc := e.Get(t, e.MainDB, "settings")
	doc["settings"].(map[string]any)["sms"] = map[string]any{"outgoing_service": "rapidpro"}
	e.Save(t, e.MainDB, doc)
	e.clock.Add(time.Second)
	if got := e.poll(t, map[string]any{}); len(got) != 0 {
		t.Errorf("with rapidpro configured the gateway got %d messages", len(got))
	}
}

func TestRapidPro(t *testing.T) {
	rp := newRapidProEmulator(t, "rp-token")
	settings := baseSettings()
	settings["sms"] = map[string]any{"outgoing_service": "rapidpro", "rapidpro": map[string]any{"url": rp.URL + "/"}}
	secrets := mapSecrets{keyRapidProOutgoing: "rp-token", keyRapidProIncoming: "rp-in"}
	e := newTestEnv(t, settings, secrets, nil)
	now := e.clock.Now()
	e.Save(t, e.MainDB,
		map[string]any{"_id": "a", "type": "data_record", "tasks": []any{pendingTask("ua", "0712345678", "Thank you Mary.", now.Add(-time.Hour), "pending")}},
		map[string]any{"_id": "old", "type": "data_record", "tasks": []any{map[string]any{"state": "sent", "gateway_ref": 1.0,
			"messages":      []any{map[string]any{"uuid": "uo", "to": "+254712345678", "message": "x"}},
			"state_history": []any{map[string]any{"state": "sent", "timestamp": "2020-01-01T00:00:00.000Z"}}}}},
	)
	st := &senderState{retries: map[string]*retry{}}
	ctx := context.Background()
	if err := e.svc.sendRun(ctx, st); err != nil {
		t.Fatal(err)
	}
	b := rp.sent()
	if len(b) != 1 || fmt.Sprint(b[0]["urns"]) != "[tel:+254712345678]" || b[0]["text"] != "Thank you Mary." {
		t.Fatalf("broadcasts = %v", b)
	}
	task := e.task(t, "a", 0)
	if task["state"] != "received-by-gateway" || task["state_details"] != "Queued" || task["gateway_ref"] != 81234.0 {
		t.Fatalf("after send: %v", task)
	}
	polls := rp.polls
	for _, step := range []struct{ status, state, details string }{
		{"wired", "forwarded-by-gateway", "Wired"},
		{"pending", "forwarded-by-gateway", "Wired"}, // unlisted: no change
		{"sent", "sent", "Sent"},
		{"delivered", "delivered", "Delivered"},
	} {
		rp.setStatus(81234, step.status)
		e.clock.Add(time.Minute)
		if err := e.svc.sendRun(ctx, st); err != nil {
			t.Fatal(err)
		}
		task := e.task(t, "a", 0)
		if task["state"] != step.state || task["state_details"] != step.details || task["gateway_ref"] != 81234.0 {
			t.Errorf("after %s: %v", step.status, task)
		}
	}
	if got := rp.polls - polls; got != 4 {
		t.Errorf("%d polls, want 4 (the old `sent` message is past PollMaxAge and never polled)", got)
	}
	// Delivered is final: no more polls; nothing sent twice.
	polls = rp.polls
	_ = e.svc.sendRun(ctx, st)
	if rp.polls != polls || len(rp.sent()) != 1 {
		t.Errorf("after delivered: polls %d→%d, broadcasts %d", polls, rp.polls, len(rp.sent()))
	}
	// 400: failed, never resent.
	e.Save(t, e.MainDB, map[string]any{"_id": "bad", "type": "data_record", "tasks": []any{pendingTask("ub", "+254712345679", "x", now, "pending")}})
	rp.sendStatus = 400
	_ = e.svc.sendRun(ctx, st)
	if task := e.task(t, "bad", 0); task["state"] != "failed" || task["state_details"] != "Failed" || task["gateway_ref"] != nil {
		t.Errorf("after 400: %v", task)
	}

	// Incoming webhook.
	hdr := map[string]string{"Authorization": "Token rp-in", "Content-Type": "application/json"}
	body := `{"id": "5f0c2d6e-8a1b-4c3d-9e7f-0a1b2c3d4e5f", "from": "+254712345678", "content": "V 12345"}`
	if code, out := e.call(t, "POST", "/api/v2/sms/rapidpro/incoming-messages", "", "", hdr, body); code != 200 || out["saved"] != 1.0 {
		t.Errorf("incoming: %d %v", code, out)
	}
	if code, out := e.call(t, "POST", "/api/v1/sms/radpidpro/incoming-messages", "", "", hdr, body); code != 400 || out["error"] != "Message was not saved" {
		t.Errorf("duplicate incoming: %d %v", code, out)
	}
	if code, _ := e.call(t, "POST", "/api/v2/sms/rapidpro/incoming-messages", "", "", hdr, `{"id": "x", "from": "+254712345678", "content": ""}`); code != 400 {
		t.Errorf("empty content: %d", code)
	}
	if recs := e.records(t); len(recs) != 1 || recs[0]["form"] != "V" || recs[0]["sms_message"].(map[string]any)["gateway_ref"] != "5f0c2d6e-8a1b-4c3d-9e7f-0a1b2c3d4e5f" {
		t.Errorf("records = %v", recs)
	}
}

func TestRapidProRateLimitStopsPolling(t *testing.T) {
	rp := newRapidProEmulator(t, "tok")
	settings := baseSettings()
	settings["sms"] = map[string]any{"outgoing_service": "rapidpro", "rapidpro": map[string]any{"url": rp.URL}}
	e := newTestEnv(t, settings, mapSecrets{keyRapidProOutgoing: "tok"}, nil)
	now := messagesISO(e.clock.Now())
	var docs []map[string]any
	for i := range 3 {
		docs = append(docs, map[string]any{"_id": fmt.Sprint("s", i), "type": "data_record", "tasks": []any{map[string]any{"state": "sent", "gateway_ref": float64(i + 1),
			"messages": []any{map[string]any{"uuid": fmt.Sprint("u", i), "to": "+254712345678", "message": "x"}}, "state_history": []any{map[string]any{"state": "sent", "timestamp": now}}}}})
	}
	e.Save(t, e.MainDB, docs...)
	rp.pollStatus = 429
	if err := e.svc.sendRun(context.Background(), &senderState{retries: map[string]*retry{}}); err != nil {
		t.Fatal(err)
	}
	if rp.polls != 1 {
		t.Errorf("%d polls after a 429, want 1", rp.polls)
	}
}

func messagesISO(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func TestAfricasTalking(t *testing.T) {
	at := newATEmulator(t, "at-key")
	settings := baseSettings()
	settings["sms"] = map[string]any{"outgoing_service": "africas-talking", "reply_to": "20414",
		"africas_talking": map[string]any{"username": "myapp"}}
	secrets := mapSecrets{keyATOutgoing: "at-key", keyATIncoming: "at-in"}
	e := newTestEnv(t, settings, secrets, func(o *Options) { o.AfricasTalkingURL = at.URL + "/version1/messaging" })
	now := e.clock.Now()
	e.Save(t, e.MainDB, map[string]any{"_id": "a", "type": "data_record", "tasks": []any{pendingTask("ua", "0712345678", "Thank you Mary.", now, "pending")}})
	st := &senderState{retries: map[string]*retry{}}
	if err := e.svc.sendRun(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	reqs := at.requests()
	if len(reqs) != 1 || reqs[0]["to"] != "+254712345678" || reqs[0]["from"] != "20414" || reqs[0]["username"] != "myapp" {
		t.Fatalf("AT requests = %v", reqs)
	}
	task := e.task(t, "a", 0)
	if task["state"] != "sent" || task["state_details"] != "Sent" || task["gateway_ref"] != "ATXid_1" {
		t.Fatalf("after send: %v", task)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	dr := "/api/v1/sms/africastalking/delivery-reports?key=at-in"
	if code, out := e.call(t, "POST", dr, "", "", form, "id=ATXid_1&status=Success&phoneNumber=%2B254712345678&networkCode=63902"); code != 200 || out["saved"] != 1.0 {
		t.Errorf("delivery report: %d %v", code, out)
	}
	if task := e.task(t, "a", 0); task["state"] != "delivered" || task["state_details"] != nil || task["gateway_ref"] != "ATXid_1" {
		t.Errorf("after Success: %v", task)
	}
	if code, out := e.call(t, "POST", dr, "", "", form, "id=ATXid_1&status=Failed&failureReason=UserInBlacklist"); code != 200 || out["saved"] != 1.0 {
		t.Errorf("failed report: %d %v", code, out)
	}
	if task := e.task(t, "a", 0); task["state"] != "failed" || task["state_details"] != "UserInBlacklist" {
		t.Errorf("after Failed: %v", task)
	}
	if code, out := e.call(t, "POST", dr, "", "", form, "id=nope&status=Success"); code != 200 || out["saved"] != 0.0 {
		t.Errorf("unknown id: %d %v", code, out)
	}
	// Incoming.
	in := "/api/v1/sms/africastalking/incoming-messages?key=at-in"
	body := "linkId=SampleLinkId123&text=V+12345&to=28901&id=at-in-1&date=2026-12-07+10%3A00%3A00&from=%2B254712345678&networkCode=63902"
	if code, out := e.call(t, "POST", in, "", "", form, body); code != 200 || out["saved"] != 1.0 {
		t.Errorf("incoming: %d %v", code, out)
	}
	if code, out := e.call(t, "POST", in, "", "", form, body); code != 200 || out["saved"] != 0.0 {
		t.Errorf("duplicate incoming: %d %v", code, out)
	}
	if code, out := e.call(t, "POST", in, "", "", form, "id=x&from=%2B254712345678"); code != 200 || out["saved"] != 0.0 {
		t.Errorf("no text: %d %v", code, out)
	}
	recs := e.records(t)
	if len(recs) != 1 || recs[0]["form"] != "V" || recs[0]["from"] != "+254712345678" {
		t.Errorf("records = %v", recs)
	}
}

// TestSenderBackoff: messages that keep failing are retried with backoff,
// never starve newer ones, and are given up after MaxAttempts.
func TestSenderBackoff(t *testing.T) {
	at := newATEmulator(t, "k")
	at.respond = func(to string, n int) (int, string) {
		if to == "+254700000001" {
			return http.StatusInternalServerError, "upstream down"
		}
		return 0, ""
	}
	settings := baseSettings()
	settings["sms"] = map[string]any{"outgoing_service": "africas-talking", "africas_talking": map[string]any{"username": "u"}}
	e := newTestEnv(t, settings, mapSecrets{keyATOutgoing: "k"}, func(o *Options) {
		o.AfricasTalkingURL = at.URL + "/version1/messaging"
		o.MaxAttempts = 3
	})
	base := e.clock.Now().Add(-24 * time.Hour)
	var docs []map[string]any
	for i := range 30 {
		to := "+254700000001" // the 25 oldest fail
		if i >= 25 {
			to = "+254712345678"
		}
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("d%02d", i), "type": "data_record",
			"tasks": []any{pendingTask(fmt.Sprintf("u%02d", i), to, "x", base.Add(time.Duration(i)*time.Minute), "pending")}})
	}
	e.Save(t, e.MainDB, docs...)
	st := &senderState{retries: map[string]*retry{}}
	ctx := context.Background()
	_ = e.svc.sendRun(ctx, st)
	if n := len(at.requests()); n != 25 {
		t.Fatalf("first run: %d sends, want 25", n)
	}
	// Next tick: the failing 25 wait out their backoff; the newer 5 go.
	e.clock.Add(time.Second)
	_ = e.svc.sendRun(ctx, st)
	reqs := at.requests()
	if len(reqs) != 30 {
		t.Fatalf("second run: %d sends in all, want 30", len(reqs))
	}
	for _, r := range reqs[25:] {
		if r["to"] != "+254712345678" {
			t.Errorf("second run sent to %s", r["to"])
		}
	}
	if task := e.task(t, "d29", 0); task["state"] != "sent" {
		t.Errorf("newer message: %v", task)
	}
	// Past the backoff: retried, and after 3 failures given up.
	for range 2 {
		e.clock.Add(2 * time.Hour)
		_ = e.svc.sendRun(ctx, st)
	}
	if n := len(at.requests()); n != 30+50 {
		t.Errorf("%d sends in all, want 80", n)
	}
	task := e.task(t, "d00", 0)
	if task["state"] != "failed" || !strings.HasPrefix(fmt.Sprint(task["state_details"]), "Gave up after 3 attempts") {
		t.Errorf("given-up message: %v", task)
	}
	e.clock.Add(2 * time.Hour)
	_ = e.svc.sendRun(ctx, st)
	if n := len(at.requests()); n != 80 {
		t.Errorf("failed messages were sent again: %d sends", n)
	}
}

func TestSenderWithoutCredentialsSendsNothing(t *testing.T) {
	at := newATEmulator(t, "k")
	settings := baseSettings()
	settings["sms"] = map[string]any{"outgoing_service": "africas-talking", "africas_talking": map[string]any{"username": "u"}}
	e := newTestEnv(t, settings, mapSecrets{}, func(o *Options) { o.AfricasTalkingURL = at.URL + "/version1/messaging" })
	e.Save(t, e.MainDB, map[string]any{"_id": "a", "type": "data_record", "tasks": []any{pendingTask("ua", "+254712345678", "x", e.clock.Now(), "pending")}})
	err := e.svc.sendRun(context.Background(), &senderState{retries: map[string]*retry{}})
	if err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("err = %v", err)
	}
	if len(at.requests()) != 0 {
		t.Error("sent without credentials")
	}
}

// TestPagingManyRowsOneDoc: a doc with more messages under one due time
// than a page holds is paged through without repeats or stalls.
func TestPagingManyRowsOneDoc(t *testing.T) {
	e := newTestEnv(t, baseSettings(), nil, nil)
	due := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var tasks []any
	for i := range 40 {
		tasks = append(tasks, pendingTask(fmt.Sprintf("m%02d", i), "+254712345678", "x", due, "pending"))
	}
	e.Save(t, e.MainDB,
		map[string]any{"_id": "big", "type": "data_record", "tasks": tasks},
		map[string]any{"_id": "a-before", "type": "data_record", "tasks": []any{pendingTask("first", "+254712345678", "x", due, "pending")}},
		map[string]any{"_id": "later", "type": "data_record", "tasks": []any{pendingTask("last", "+254712345678", "x", due.Add(time.Hour), "pending")}},
	)
	for _, size := range []int{3, 7, 40, 41, 100} {
		var got []string
		err := e.svc.eachRow(context.Background(), "outgoing_by_due", nil, size, 1000, func(r couch.Row) bool {
			got = append(got, r.Value.(string))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, u := range got {
			if seen[u] {
				t.Errorf("page size %d: %s twice", size, u)
			}
			seen[u] = true
		}
		if len(got) != 42 || got[0] != "first" || got[41] != "last" {
			t.Errorf("page size %d: %d rows, first %s, last %s", size, len(got), got[0], got[len(got)-1])
		}
	}
	// Skipping the first 30 in the sender's selection still finds 12.
	n := 0
	out, err := e.svc.dueMessages(context.Background(), 25, 500, func(string) bool { n++; return n > 30 })
	if err != nil || len(out) != 12 || out[11].uuid != "last" {
		t.Errorf("dueMessages: %d, %v", len(out), err)
	}
}

// TestSendRunsNeverOverlap: with an aggregator slower than the tick, runs
// stay sequential and no message is sent twice.
func TestSendRunsNeverOverlap(t *testing.T) {
	at := newATEmulator(t, "k")
	at.delay = 150 * time.Millisecond
	settings := baseSettings()
	settings["sms"] = map[string]any{"outgoing_service": "africas-talking", "africas_talking": map[string]any{"username": "u"}}
	e := newTestEnv(t, settings, mapSecrets{keyATOutgoing: "k"}, func(o *Options) {
		o.AfricasTalkingURL = at.URL + "/version1/messaging"
		o.SendInterval, o.FirstSendDelay = 10*time.Millisecond, 10*time.Millisecond
		o.Now = time.Now
	})
	var docs []map[string]any
	for i := range 4 {
		docs = append(docs, map[string]any{"_id": fmt.Sprint("d", i), "type": "data_record",
			"tasks": []any{pendingTask(fmt.Sprint("u", i), "+254712345678", "x", time.Now(), "pending")}})
	}
	e.Save(t, e.MainDB, docs...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.RunSender(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(at.requests()) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a few more ticks
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	at.mu.Lock()
	maxIn := at.maxInflight
	at.mu.Unlock()
	if n := len(at.requests()); n != 4 || maxIn != 1 {
		t.Errorf("%d sends (want 4), at most %d at once (want 1)", n, maxIn)
	}
}

// TestSenderFenced: a sender whose fence refuses (this instance lost its
// lease) hands nothing to the aggregator and leaves the message pending.
func TestSenderFenced(t *testing.T) {
	at := newATEmulator(t, "k")
	settings := baseSettings()
	settings["sms"] = map[string]any{"outgoing_service": "africas-talking", "africas_talking": map[string]any{"username": "u"}}
	lost := errors.New("lost the lease")
	e := newTestEnv(t, settings, mapSecrets{keyATOutgoing: "k"}, func(o *Options) {
		o.AfricasTalkingURL = at.URL + "/version1/messaging"
		o.Fence = func() error { return lost }
	})
	e.Save(t, e.MainDB, map[string]any{"_id": "a", "type": "data_record", "tasks": []any{pendingTask("ua", "+254712345678", "x", e.clock.Now(), "pending")}})
	err := e.svc.sendRun(context.Background(), &senderState{retries: map[string]*retry{}})
	if !errors.Is(err, lost) {
		t.Errorf("err = %v, want the fence's", err)
	}
	if len(at.requests()) != 0 {
		t.Error("sent past the fence")
	}
}
