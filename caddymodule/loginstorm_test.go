package caddymodule

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// A login storm (the morning a campaign opens) while WeChat is slow, then
// down, through a real gateway: Caddy built from ./cmd/caddy in a child
// process, whose WeChat is a wechattest fake in this process. The
// gateway's goroutines (Caddy's admin /debug/pprof/goroutine) and
// resident memory (/proc/<pid>/status) are read before, at the peak and
// after; pass-through of existing sessions is answered 200 throughout.

const (
	// stormClients is how many clients post logins at once.
	stormClients = 100
	// stormWeChatTimeout is the gateway's WeChat timeout; the slow
	// WeChat answers after stormWeChatDelay, well beyond it.
	stormWeChatTimeout = time.Second
	stormWeChatDelay   = 5 * time.Second
	// The storm's two halves.
	stormSlowFor, stormDownFor = 6 * time.Second, 4 * time.Second
)

// stormGateway is the child gateway and its probes.
type stormGateway struct {
	t           *testing.T
	proc        *gatewaytest.Process
	port, admin int
	client      *http.Client
}

func (g *stormGateway) do(method, path, token, body string) (int, string, error) {
	return g.doWith(g.client, method, path, token, body)
}

// clientFrom is an HTTP client whose connections come from 127.0.0.<2+i>.
func clientFrom(i int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(i/250), byte(2+i%250))}}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func (g *stormGateway) doWith(c *http.Client, method, path, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", g.port, path), strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// goroutines reads the first line of Caddy's goroutine profile,
// "goroutine profile: total N".
func (g *stormGateway) goroutines() int {
	g.t.Helper()
	resp, err := g.client.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", g.admin))
	if err != nil {
		g.t.Fatalf("goroutine profile: %v", err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total ")))
	if err != nil {
		g.t.Fatalf("goroutine profile's first line %q: %v", line, err)
	}
	return n
}

// rssMB reads the child's VmRSS, in MiB.
func (g *stormGateway) rssMB() float64 {
	g.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.proc.Pid()))
	if err != nil {
		g.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				g.t.Fatalf("VmRSS %q: %v", line, err)
			}
			return float64(kb) / 1024
		}
	}
	g.t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}

// figures is what the gateway holds at one moment.
type figures struct {
	goroutines int
	rss        float64
}

func (f figures) String() string {
	return fmt.Sprintf("%d goroutines, %.1f MiB RSS", f.goroutines, f.rss)
}

func (g *stormGateway) figures() figures { return figures{g.goroutines(), g.rssMB()} }

// While a storm of logins meets a WeChat that answers after 5 s (beyond
// the gateway's 1 s timeout), then one that is gone (connection refused),
// the gateway's goroutines and memory stay bounded by the clients it
// serves, come back down after, and pass-through of existing sessions is
// answered 200 throughout.
func TestGatewayLoginStormWeChatSlowThenDown(t *testing.T) {
	var build gatewaytest.Build // (no race detector in the child: its own figures)
	t.Cleanup(func() { build.Remove() })
	ports, err := gatewaytest.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	appID := newAppID()
	fake := wechattest.NewServer(appID, testSecret)
	closed := false
	t.Cleanup(func() {
		if !closed {
			fake.Close()
		}
	})
	dir := t.TempDir()
	g := &stormGateway{t: t, port: ports[0], admin: ports[1], client: &http.Client{Timeout: 30 * time.Second}}
	cfg := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tstorage file_system %s\n}\n\nhttp://127.0.0.1:%d {\n\twechat_auth {\n\t\tapp_id %s\n\t\tapp_secret %s\n\t\tapi_base %s\n\t\ttimeout %v\n\t}\n\trespond \"{http.auth.user.id}\"\n}\n",
		g.admin, filepath.Join(dir, "data"), g.port, appID, testSecret, fake.URL, stormWeChatTimeout)
	g.proc = gatewaytest.Run(t, gatewaytest.Options{Bin: build.Bin(t), Dir: dir, Caddyfile: cfg,
		Ready: func() bool { st, _, _ := g.do("GET", "/", "", ""); return st == http.StatusUnauthorized }})

	type live struct{ token, openid string }
	var sessions []live
	for i := range 20 {
		st, body, err := g.do("POST", "/wechat/login", "", fmt.Sprintf(`{"code":"resident%d"}`, i))
		var a struct{ Token, OpenID string }
		if err != nil || st != http.StatusOK || json.Unmarshal([]byte(body), &a) != nil {
			t.Fatalf("login before the storm: %d %q %v", st, body, err)
		}
		sessions = append(sessions, live{a.Token, a.OpenID})
	}
	before := g.figures()

	// Pass-through, from two clients, all the way through.
	stop := make(chan struct{})
	var passWG sync.WaitGroup
	var passed atomic.Int64
	var passFailed atomic.Value // string: the first answer other than 200
	for w := range 2 {
		passWG.Add(1)
		go func() {
			defer passWG.Done()
			for i := w; ; i += 2 {
				select {
				case <-stop:
					return
				default:
				}
				s := sessions[i%len(sessions)]
				st, body, err := g.do("GET", "/", s.token, "")
				if err != nil || st != http.StatusOK || body != s.openid {
					passFailed.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", st, body, err))
					return
				}
				passed.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	// The storm: every client posts fresh codes, one after the other.
	fake.SetDelay(wechattest.APICode2Session, stormWeChatDelay)
	stormStop := make(chan struct{})
	var stormWG sync.WaitGroup
	var storm []*http.Client
	var mu sync.Mutex
	answers := map[string]int{}
	var phase atomic.Value // "slow", then "down": what the answers are counted under
	phase.Store("slow")
	for w := range stormClients {
		// Each client from an address of its own, as in a real storm:
		// the gateway lets a few logins of one address reach WeChat
		// at a time (refused_code_limit), and would queue the rest.
		from := clientFrom(w)
		t.Cleanup(from.CloseIdleConnections)
		storm = append(storm, from)
		stormWG.Add(1)
		go func() {
			defer stormWG.Done()
			for i := 0; ; i++ {
				select {
				case <-stormStop:
					return
				default:
				}
				st, body, err := g.doWith(from, "POST", "/wechat/login", "", fmt.Sprintf(`{"code":"storm%d:%d"}`, w, i))
				key := phase.Load().(string) + " " + strconv.Itoa(st)
				var e struct{ Error string }
				if json.Unmarshal([]byte(body), &e) == nil && e.Error != "" {
					key += " " + e.Error
				}
				if err != nil {
					key = phase.Load().(string) + " transport error"
				}
				mu.Lock()
				answers[key]++
				mu.Unlock()
			}
		}()
	}
	peak := before
	sample := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			f := g.figures()
			peak.goroutines, peak.rss = max(peak.goroutines, f.goroutines), max(peak.rss, f.rss)
		}
	}
	sample(stormSlowFor)
	slowPeak := peak
	fake.SetDelay(wechattest.APICode2Session, 0)
	fake.Close() // WeChat gone: its port refuses connections
	closed = true
	phase.Store("down")
	sample(stormDownFor)
	close(stormStop)
	stormWG.Wait()
	for _, c := range storm {
		c.CloseIdleConnections() // the clients are gone, as after a real storm
	}

	var after figures
	if !gatewaytest.Poll(15*time.Second, func() bool {
		after = g.figures()
		return after.goroutines <= before.goroutines+50
	}) {
		t.Fatalf("goroutines not back near the level before the storm (%v) within 15s: %v", before, after)
	}
	close(stop)
	passWG.Wait()
	if v := passFailed.Load(); v != nil {
		t.Fatalf("pass-through during the storm: %s, want 200", v)
	}
	t.Logf("before: %v; peak while WeChat was slow: %v; peak in all: %v; after: %v", before, slowPeak, peak, after)
	t.Logf("%d storm clients: answers %v; %d pass-through answers, all 200", stormClients, answers, passed.Load())
	// Generous bounds: a few goroutines per client connection (its
	// server goroutine, the WeChat call and its transport's), and a few
	// MiB per client at most; far from what one per request would cost.
	if limit := before.goroutines + 10*stormClients; peak.goroutines > limit {
		t.Fatalf("peak of %d goroutines, bound %d", peak.goroutines, limit)
	}
	if limit := before.rss + 256; peak.rss > limit {
		t.Fatalf("peak RSS %.1f MiB, bound %.1f", peak.rss, limit)
	}
	if answers["down 503 wechat_unavailable"] == 0 || passed.Load() < 50 {
		t.Fatalf("the storm did less than it says: %v, %d pass-through answers", answers, passed.Load())
	}
}
