package sms

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch/couchtest"
	"sentinel-go/daemon"
)

// story is the daemon and the SMS component running on one database, as
// `sentinel --sms-listen ... [--sms-send]` runs them.
type story struct {
	env  *couchtest.Env
	svc  *Service
	url  string // SMS API base URL
	logs *couchtest.LogBuffer
}

func registrationSettings(sms map[string]any) map[string]any {
	s := map[string]any{
		"default_country_code": 254,
		"locale":               "en",
		"permissions":          map[string]any{"can_access_gateway_api": []any{"gateway"}},
		"transitions":          map[string]any{"update_clinics": true, "registration": true},
		"contact_types": []any{
			map[string]any{"id": "clinic"},
			map[string]any{"id": "person", "parents": []any{"clinic"}, "person": true},
		},
		"forms": map[string]any{"P": map[string]any{"meta": map[string]any{"code": "P", "label": "Pregnancy"},
			"fields": map[string]any{"patient_name": map[string]any{"type": "string", "labels": map[string]any{"tiny": "n"}, "required": true}}}},
		"registrations": []any{map[string]any{"form": "P",
			"events": []any{map[string]any{"name": "on_create", "trigger": "add_patient"}},
			"messages": []any{map[string]any{"event_type": "report_accepted", "recipient": "reporting_unit",
				"message": []any{map[string]any{"locale": "en", "content": "Thank you {{contact.name}}, {{patient_name}} is registered ({{patient_id}})."}}}}}},
	}
	if sms != nil {
		s["sms"] = sms
	}
	return s
}

func startStory(t *testing.T, settings map[string]any, secrets mapSecrets, tweak func(*Options)) *story {
	t.Helper()
	env := couchtest.New(t)
	env.Save(t, env.MainDB,
		map[string]any{"_id": "settings", "settings": settings},
		map[string]any{"_id": "clinic", "type": "clinic", "name": "Clinic"},
		map[string]any{"_id": "carol", "type": "person", "name": "Carol", "phone": "+254712000010",
			"parent": map[string]any{"_id": "clinic"}})
	logs := &couchtest.LogBuffer{}
	log := zerolog.New(logs)
	d, err := daemon.New(daemon.Options{CouchURL: env.URL, Log: log, PollTimeout: 2 * time.Second,
		MaxBackoff: time.Second, Jobs: daemon.DefaultJobs()})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{CouchURL: env.URL, Log: log, Secrets: secrets, SettingsMaxAge: 100 * time.Millisecond}
	if tweak != nil {
		tweak(&opts)
	}
	svc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("daemon: %v", err)
		}
	})
	wg.Go(func() {
		if err := svc.ServeListener(ctx, ln); err != nil {
			t.Errorf("SMS API: %v", err)
		}
	})
	wg.Go(func() {
		if err := svc.RunSender(ctx); err != nil {
			t.Errorf("sender: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("daemon and SMS component did not stop within 10 s")
		}
		_ = svc.Close()
	})
	return &story{env: env, svc: svc, url: "http://" + ln.Addr().String(), logs: logs}
}

func (s *story) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Log(s.logs.String())
	t.Fatalf("timed out waiting for %s", what)
}

func (s *story) post(t *testing.T, path, user, pass, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// replyTask returns the first task of the record, nil until there is one.
func (s *story) replyTask(t *testing.T, id string) map[string]any {
	doc := s.env.Get(t, s.env.MainDB, id)
	tasks, _ := doc["tasks"].([]any)
	if len(tasks) == 0 {
		return nil
	}
	return tasks[0].(map[string]any)
}

const wantReplyPrefix = "Thank you Carol, Jane is registered ("

// TestEndToEndGateway: a CHT Gateway posts "P Jane" from a known number;
// the record is created, the daemon's registration transition registers
// Jane and replies; the next poll carries the reply; SENT then DELIVERED
// move it to delivered.
func TestEndToEndGateway(t *testing.T) {
	s := startStory(t, registrationSettings(nil), nil, nil)
	user := "gw" + strings.ToLower(s.env.MainDB)
	if err := couchtest.Request("PUT", s.env.Server+"/_users/org.couchdb.user:"+user,
		map[string]any{"name": user, "password": "secret", "roles": []any{"gateway"}, "type": "user"}, nil); err != nil {
		t.Fatal(err)
	}
	poll := func(body map[string]any) []any {
		b, _ := json.Marshal(body)
		code, out := s.post(t, "/api/sms", user, "secret", "application/json", string(b))
		if code != 200 {
			t.Fatalf("poll: %d %v", code, out)
		}
		return out["messages"].([]any)
	}
	if out := poll(map[string]any{"messages": []any{map[string]any{"id": "gw-1", "from": "0712000010", "content": "P Jane"}}}); len(out) != 0 {
		t.Errorf("first poll handed out %v", out)
	}
	id := recordID("gw-1")
	rec := s.env.Get(t, s.env.MainDB, id)
	if rec == nil || rec["form"] != "P" || rec["from"] != "+254712000010" {
		t.Fatalf("record = %v", rec)
	}
	s.waitFor(t, "the registration reply", func() bool { return s.replyTask(t, id) != nil })
	rec = s.env.Get(t, s.env.MainDB, id)
	if pid, _ := rec["patient_id"].(string); pid == "" {
		t.Errorf("no patient registered: %v", rec)
	}
	task := s.replyTask(t, id)
	if task["state"] != "pending" {
		t.Fatalf("reply task = %v", task)
	}
	out := poll(map[string]any{})
	if len(out) != 1 {
		t.Fatalf("second poll: %v", out)
	}
	m := out[0].(map[string]any)
	uuid, _ := m["id"].(string)
	if m["to"] != "+254712000010" || !strings.HasPrefix(m["content"].(string), wantReplyPrefix) || uuid == "" {
		t.Errorf("handed out %v", m)
	}
	if st := s.replyTask(t, id)["state"]; st != "forwarded-to-gateway" {
		t.Errorf("state after the poll = %v", st)
	}
	poll(map[string]any{"updates": []any{map[string]any{"id": uuid, "status": "SENT"}}})
	if st := s.replyTask(t, id)["state"]; st != "sent" {
		t.Errorf("state after SENT = %v", st)
	}
	if out := poll(map[string]any{"updates": []any{map[string]any{"id": uuid, "status": "DELIVERED"}}}); len(out) != 0 {
		t.Errorf("handed out again after SENT: %v", out)
	}
	task = s.replyTask(t, id)
	var states []string
	for _, h := range task["state_history"].([]any) {
		states = append(states, h.(map[string]any)["state"].(string))
	}
	if task["state"] != "delivered" || strings.Join(states, ",") != "pending,forwarded-to-gateway,sent,delivered" {
		t.Errorf("task = %v", task)
	}
}

// TestEndToEndAfricasTalking: the same story through Africa's Talking: the
// incoming callback, the daemon's reply, the --sms-send loop, the delivery
// report.
func TestEndToEndAfricasTalking(t *testing.T) {
	at := newATEmulator(t, "at-key")
	settings := registrationSettings(map[string]any{"outgoing_service": "africas-talking",
		"africas_talking": map[string]any{"username": "myapp"}, "reply_to": "20414"})
	secrets := mapSecrets{keyATOutgoing: "at-key", keyATIncoming: "at-in"}
	s := startStory(t, settings, secrets, func(o *Options) {
		o.AfricasTalkingURL = at.URL + "/version1/messaging"
		o.SendInterval, o.FirstSendDelay = 200*time.Millisecond, 50*time.Millisecond
	})
	form := "application/x-www-form-urlencoded"
	code, out := s.post(t, "/api/v1/sms/africastalking/incoming-messages?key=at-in", "", "", form,
		"linkId=L1&text=P+Jane&to=20414&id=at-1&date=2026-12-07+10%3A00%3A00&from=%2B254712000010&networkCode=63902")
	if code != 200 || out["saved"] != 1.0 {
		t.Fatalf("incoming: %d %v", code, out)
	}
	id := recordID("at-1")
	s.waitFor(t, "the reply to be sent", func() bool {
		task := s.replyTask(t, id)
		return task != nil && task["state"] == "sent"
	})
	reqs := at.requests()
	if len(reqs) != 1 || reqs[0]["to"] != "+254712000010" || !strings.HasPrefix(reqs[0]["message"], wantReplyPrefix) || reqs[0]["from"] != "20414" {
		t.Fatalf("AT got %v", reqs)
	}
	task := s.replyTask(t, id)
	ref, _ := task["gateway_ref"].(string)
	if ref != "ATXid_1" || task["state_details"] != "Sent" {
		t.Errorf("task after send = %v", task)
	}
	code, out = s.post(t, "/api/v1/sms/africastalking/delivery-reports?key=at-in", "", "", form,
		"id="+ref+"&status=Success&phoneNumber=%2B254712000010&networkCode=63902&retryCount=0")
	if code != 200 || out["saved"] != 1.0 {
		t.Fatalf("delivery report: %d %v", code, out)
	}
	if st := s.replyTask(t, id)["state"]; st != "delivered" {
		t.Errorf("state after the delivery report = %v", st)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(at.requests()); n != 1 {
		t.Errorf("the reply was sent %d times", n)
	}
	for _, secret := range []string{"at-key", "at-in", "pass@"} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("a credential (%s) is in the logs", secret)
		}
	}
}

// TestEndToEndLoopProtection: the reference's three loop guards on the SMS
// path (spec §8.3): a reply to the gateway's own number is denied and never
// handed out, and our own outgoing message coming back with its gateway id
// is dropped.
func TestEndToEndLoopProtection(t *testing.T) {
	settings := registrationSettings(nil)
	settings["gateway_number"] = "0712000010" // Carol's number, as the gateway phone
	s := startStory(t, settings, nil, nil)
	poll := func(body map[string]any) []any {
		b, _ := json.Marshal(body)
		code, out := s.post(t, "/api/sms", "admin", "pass", "application/json", string(b))
		if code != 200 {
			t.Fatalf("poll: %d %v", code, out)
		}
		return out["messages"].([]any)
	}
	poll(map[string]any{"messages": []any{map[string]any{"id": "loop-1", "from": "+254712000010", "content": "P Jane"}}})
	id := recordID("loop-1")
	s.waitFor(t, "the reply task", func() bool { return s.replyTask(t, id) != nil })
	if st := s.replyTask(t, id)["state"]; st != "denied" {
		t.Errorf("reply to the gateway's own number: state %v, want denied", st)
	}
	if out := poll(map[string]any{}); len(out) != 0 {
		t.Errorf("handed out %v", out)
	}
	// An outgoing message whose aggregator id comes back as an incoming one.
	s.env.Save(t, s.env.MainDB, map[string]any{"_id": "out", "type": "data_record", "tasks": []any{map[string]any{
		"state": "sent", "gateway_ref": "echo-1", "messages": []any{map[string]any{"uuid": "u", "to": "+254712000099", "message": "hi"}}}}})
	poll(map[string]any{"messages": []any{map[string]any{"id": "echo-1", "from": "+254712000099", "content": "hi"}}})
	if doc := s.env.Get(t, s.env.MainDB, recordID("echo-1")); doc != nil {
		t.Errorf("echoed message saved: %v", doc)
	}
}
