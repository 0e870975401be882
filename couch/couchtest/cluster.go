package couchtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ClusterProxy stands in front of the test server (PouchDB Server) and makes
// its changes feed behave as an Apache CouchDB 3 cluster's does, in the three
// ways that PouchDB Server hides and that broke the daemon before:
//
//   - sequences are opaque strings ("12-g1AAAA…"), never numbers: whatever
//     parses or compares them breaks;
//   - a longpoll returns every change there is (up to its limit) at once, so
//     the docs of one _bulk_docs come in one batch, where PouchDB Server
//     returns the first change alone;
//   - the feed can rewind (RewindNext): a cluster whose node restarted or
//     whose shard moved answers the next read from an older point, and
//     unchanged docs come again.
//
// Every other request goes through untouched.
type ClusterProxy struct {
	// Server is the server's admin URL through the proxy (no database).
	Server string
	target *url.URL
	rp     *httputil.ReverseProxy
	mu     sync.Mutex
	rewind bool
	// Rewinds counts the reads answered from the start.
	rewinds int
}

// NewClusterProxy starts a proxy in front of server (an admin URL), stopped
// when the test ends.
func NewClusterProxy(t testing.TB, server string) *ClusterProxy {
	t.Helper()
	target, err := url.Parse(server)
	if err != nil {
		t.Fatalf("cluster proxy: %v", err)
	}
	p := &ClusterProxy{target: target}
	upstream := *target
	upstream.User = nil
	p.rp = httputil.NewSingleHostReverseProxy(&upstream)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	u.User = target.User
	p.Server = u.String()
	return p
}

// RewindNext makes the next changes read start from the beginning of the
// feed, whatever its since, as a cluster does after losing a node.
func (p *ClusterProxy) RewindNext() {
	p.mu.Lock()
	p.rewind = true
	p.mu.Unlock()
}

// Rewinds is how many reads were answered from the start.
func (p *ClusterProxy) Rewinds() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rewinds
}

func (p *ClusterProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/_changes") {
		p.rp.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	since := plainSeq(q.Get("since"))
	p.mu.Lock()
	if p.rewind {
		p.rewind, since = false, "0"
		p.rewinds++
	}
	p.mu.Unlock()
	q.Set("since", since)
	if q.Get("feed") == "longpoll" {
		// What is there now, all of it: then the longpoll only when none.
		now := cloneValues(q)
		now.Set("feed", "normal")
		now.Del("timeout")
		now.Del("heartbeat")
		status, out, err := p.forward(r, now, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if status != http.StatusOK || !emptyFeed(out) {
			writeOpaque(w, status, out)
			return
		}
	}
	status, out, err := p.forward(r, q, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	writeOpaque(w, status, out)
}

// forward sends the changes request upstream with query q.
func (p *ClusterProxy) forward(r *http.Request, q url.Values, body []byte) (int, []byte, error) {
	u := *p.target
	u.User = nil
	u.Path = r.URL.Path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = r.Header.Clone()
	req.Header.Del("Accept-Encoding") // the body is rewritten: plain JSON
	if req.Header.Get("Authorization") == "" && p.target.User != nil {
		pw, _ := p.target.User.Password()
		req.SetBasicAuth(p.target.User.Username(), pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func emptyFeed(out []byte) bool {
	var f struct {
		Results []json.RawMessage `json:"results"`
	}
	return json.Unmarshal(out, &f) == nil && len(f.Results) == 0
}

// writeOpaque answers with the feed's seqs made opaque strings.
func writeOpaque(w http.ResponseWriter, status int, out []byte) {
	var f map[string]json.RawMessage
	if status == http.StatusOK && json.Unmarshal(out, &f) == nil {
		var rows []map[string]json.RawMessage
		if json.Unmarshal(f["results"], &rows) == nil {
			for _, row := range rows {
				row["seq"] = opaqueSeq(row["seq"])
			}
			f["results"], _ = json.Marshal(rows)
		}
		f["last_seq"] = opaqueSeq(f["last_seq"])
		out, _ = json.Marshal(f)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// opaqueSeq turns PouchDB's numeric seq into a CouchDB 3-like string: the
// number, a dash and a blob, as a cluster's seqs look.
func opaqueSeq(raw json.RawMessage) json.RawMessage {
	n := strings.Trim(string(raw), `"`)
	if _, err := strconv.ParseInt(n, 10, 64); err != nil {
		return raw
	}
	sum := sha256.Sum256([]byte("seq" + n))
	s, _ := json.Marshal(fmt.Sprintf("%s-g1AAAA%s", n, base64.RawURLEncoding.EncodeToString(sum[:18])))
	return s
}

// plainSeq turns an opaque seq of ours back into PouchDB's number ("now"
// and numbers pass through).
func plainSeq(s string) string {
	if n, _, ok := strings.Cut(s, "-g1AAAA"); ok {
		return n
	}
	if s == "" {
		return "0"
	}
	return s
}

func cloneValues(q url.Values) url.Values {
	c := url.Values{}
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	return c
}
