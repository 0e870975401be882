package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
)

// cutProxy forwards TCP connections to a server and can drop them all at
// once, like a load balancer or a flaky network in the middle of a longpoll.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
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
	env := couchtest.New(t)
	u, _ := url.Parse(env.Server)
	proxy := newCutProxy(t, u.Host)
	docs := []map[string]any{settings(map[string]any{"generate_shortcode_on_contacts": true})}
	for i := 0; i < 60; i++ {
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("p%02d", i), "type": "person"})
	}
	env.Save(t, env.MainDB, docs...)
	viaProxy := *env
	viaProxy.URL = fmt.Sprintf("http://admin:pass@%s/%s", proxy.ln.Addr(), env.MainDB)
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
