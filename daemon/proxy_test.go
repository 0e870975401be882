package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
)

// cutProxy forwards TCP connections to a server and can drop them all at
// once, like a load balancer or a flaky network in the middle of a longpoll.
type cutProxy struct {
	ln     net.Listener
	addr   string
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	go p.serve(ln)
	t.Cleanup(func() { p.down() })
	return p
}

// down stops the proxy: connections are refused, as from a stopped server.
func (p *cutProxy) down() {
	p.mu.Lock()
	ln := p.ln
	p.mu.Unlock()
	ln.Close()
	p.cut()
}

// up listens again on the same address.
func (p *cutProxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

func (p *cutProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

// cut closes every open connection.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// TestConnectionCutsLoseNothing drops every connection between the daemon
// and the server again and again while it works through a backlog: it
// reconnects from its checkpoint and every doc ends processed exactly once.
func TestConnectionCutsLoseNothing(t *testing.T) {
	env := couchtest.NewPrivate(t)
	u, _ := url.Parse(env.Server)
	proxy := newCutProxy(t, u.Host)
	docs := []map[string]any{settings(map[string]any{"generate_shortcode_on_contacts": true})}
	for i := 0; i < 60; i++ {
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("p%02d", i), "type": "person"})
	}
	env.Save(t, env.MainDB, docs...)
	viaProxy := *env
	viaProxy.URL = fmt.Sprintf("http://admin:pass@%s/%s", proxy.addr, env.MainDB)
	r := start(t, &viaProxy)
	stop := make(chan struct{})
	go func() {
		for i := 0; i < 15; i++ {
			select {
			case <-stop:
				return
			case <-time.After(70 * time.Millisecond):
				proxy.cut()
			}
		}
	}()
	defer close(stop)
	r.waitFor(t, "every person processed", func() bool {
		for i := 0; i < 60; i++ {
			id := fmt.Sprintf("p%02d", i)
			if infoTransitions(t, env, id)["generate_shortcode_on_contacts"] == nil {
				return false
			}
		}
		return true
	})
	seen := map[string]string{}
	for i := 0; i < 60; i++ {
		id := fmt.Sprintf("p%02d", i)
		d := env.Get(t, env.MainDB, id)
		code, _ := d["patient_id"].(string)
		if code == "" || seen[code] != "" {
			t.Errorf("%s: patient_id %q (also on %s)", id, code, seen[code])
		}
		seen[code] = id
		if rev, _ := d["_rev"].(string); rev[:2] != "2-" {
			t.Errorf("%s written more than once: rev %s", id, rev)
		}
	}
}

// TestServerOutage takes the server away for 20 s in the middle of a
// backlog: the daemon says so once, probes it every second, and carries on
// from where it was within about a second of the server's return, without
// a restart and without a line per failed request; nothing is lost or done
// twice.
func TestServerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s outage")
	}
	env := couchtest.NewPrivate(t)
	u, _ := url.Parse(env.Server)
	proxy := newCutProxy(t, u.Host)
	docs := []map[string]any{settings(map[string]any{"generate_shortcode_on_contacts": true})}
	for i := 0; i < 40; i++ {
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("p%02d", i), "type": "person"})
	}
	env.Save(t, env.MainDB, docs...)
	viaProxy := *env
	viaProxy.URL = fmt.Sprintf("http://admin:pass@%s/%s", proxy.addr, env.MainDB)
	r := start(t, &viaProxy)
	r.waitFor(t, "the first doc processed", func() bool { return infoTransitions(t, env, "p00") != nil })
	proxy.down()
	time.Sleep(20 * time.Second)
	proxy.up(t)
	back := time.Now()
	r.waitFor(t, "the daemon back at work", func() bool { return strings.Contains(r.logs.String(), "reachable again") })
	if took := time.Since(back); took > 2500*time.Millisecond {
		t.Errorf("the daemon noticed the server back after %s (want about a second)", took)
	}
	r.waitFor(t, "every person processed after the outage", func() bool {
		for i := 0; i < 40; i++ {
			if infoTransitions(t, env, fmt.Sprintf("p%02d", i))["generate_shortcode_on_contacts"] == nil {
				return false
			}
		}
		return true
	})
	logs := r.logs.String()
	if n := strings.Count(logs, "CouchDB is unreachable; waiting"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
	if n := strings.Count(logs, "CouchDB is reachable again"); n != 1 {
		t.Errorf("the return was logged %d times, want once", n)
	}
	if strings.Contains(logs, "retry_in") {
		t.Error("failed requests during the outage were logged one by one")
	}
	for i := 0; i < 40; i++ {
		d := env.Get(t, env.MainDB, fmt.Sprintf("p%02d", i))
		if rev, _ := d["_rev"].(string); !strings.HasPrefix(rev, "2-") {
			t.Errorf("p%02d written %s times", i, rev)
		}
	}
}
