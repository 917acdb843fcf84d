package redisstore

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// The fault tests' gateway: Caddy built from ./cmd/caddy, in a child
// process on free ports, its wechat_auth site on the Redis store and a
// wechat_mock site playing WeChat; and the traffic they run through it
// while Redis is resharded, migrating or slow.

// caddyBuild is cmd/caddy, built once for the tests of this package.
var caddyBuild gatewaytest.Build

func TestMain(m *testing.M) {
	code := m.Run()
	caddyBuild.Remove()
	os.Exit(code)
}

const gatewayApp = "wx00000000fa017001"

// gateway is a Caddy child process with one wechat_auth site.
type gateway struct {
	t      *testing.T
	port   int
	proc   *gatewaytest.Process
	client *http.Client
}

// startGateway runs a gateway whose store redis block holds settings (one
// a line), and waits until it answers.
func startGateway(t *testing.T, settings ...string) *gateway {
	t.Helper()
	ports, err := gatewaytest.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	block := "\t\tstore redis {\n\t\t\t" + strings.Join(settings, "\n\t\t\t") + "\n\t\t}\n"
	cfg := gatewaytest.MockedGateway{Admin: ports[0], Storage: filepath.Join(dir, "data"),
		AppID: gatewayApp, AppSecret: "fault-test-secret", Mock: ports[2],
		Sites: []gatewaytest.GatewaySite{{Port: ports[1], Store: block, Respond: "{http.auth.user.id} {http.auth.user.phone}"}},
	}.Caddyfile()
	g := &gateway{t: t, port: ports[1], client: &http.Client{Timeout: 20 * time.Second}}
	g.proc = gatewaytest.Run(t, gatewaytest.Options{Bin: caddyBuild.Bin(t), Dir: dir, Caddyfile: cfg,
		Ready: func() bool { st, _, _ := g.get(""); return st == http.StatusUnauthorized }})
	return g
}

func (g *gateway) do(method, path, token, body string) (int, string, error) {
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
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// get is a pass-through request: 200 answers "<openid> <phone>".
func (g *gateway) get(token string) (int, string, error) { return g.do("GET", "/", token, "") }

// session is a login the gateway answered 200.
type session struct{ token, openid string }

// login posts a code; the session is set when it was answered 200.
func (g *gateway) login(code string) (session, int, string) {
	st, body, err := g.do("POST", "/wechat/login", "", fmt.Sprintf(`{"code":%q}`, code))
	if err != nil {
		return session{}, 0, err.Error()
	}
	var a struct{ Token, OpenID string }
	if st == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &a); err != nil || a.Token == "" {
			return session{}, st, body
		}
	}
	return session{a.Token, a.OpenID}, st, body
}

func (g *gateway) mustLogin(code string) session {
	g.t.Helper()
	a, st, body := g.login(code)
	if st != http.StatusOK {
		g.t.Fatalf("login %q: %d %s", code, st, body)
	}
	return a
}

// wantServed checks that a session is served, as its user and with the
// phone when one is given.
func (g *gateway) wantServed(a session, phone string) {
	g.t.Helper()
	st, body, err := g.get(a.token)
	if err != nil || st != http.StatusOK || body != a.openid+" "+phone {
		g.t.Fatalf("session of %s: %d %q %v, want 200 %q", a.openid, st, body, err, a.openid+" "+phone)
	}
}

// wantDead checks that a logged-out session is refused.
func (g *gateway) wantDead(a session) {
	g.t.Helper()
	if st, body, err := g.get(a.token); err != nil || st != http.StatusUnauthorized {
		g.t.Fatalf("a logged-out session of %s: %d %q %v, want 401", a.openid, st, body, err)
	}
}

// copyKey is the Redis key of a token's session copy at the gateway.
func copyKey(token string) string {
	return DefaultKeyPrefix + gatewayApp + ":s:" + hexOf(store.HashToken(token))
}

// userKeyOf is the Redis key of a user's record at the gateway.
func userKeyOf(openid string) string { return DefaultKeyPrefix + gatewayApp + ":u:{" + openid + "}" }

// traffic is look-ups of live sessions and logins, from several
// goroutines, until stopped. A look-up of a live session may be answered
// 200 or 503 (the store unavailable for a moment), never 401; a login 200
// or 503. Anything else is a failure.
type traffic struct {
	g    *gateway
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	answered []session      // logins answered 200
	counts   map[string]int // "lookup 200", "login 503", ...
	bad      []string
}

// startTraffic runs lookers goroutines of look-ups of live and loggers
// goroutines of logins of users prefix0..prefix49 (a user logs in again
// and again: key rotations, rewrites of its other sessions' copies).
func (g *gateway) startTraffic(live []session, lookers, loggers int, prefix string) *traffic {
	tr := &traffic{g: g, stop: make(chan struct{}), counts: map[string]int{}}
	for w := range lookers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := w; tr.running(); i += lookers {
				a := live[i%len(live)]
				st, body, err := g.get(a.token)
				tr.note("lookup", st, body, err, st == http.StatusOK && body == a.openid+" ")
			}
		}()
	}
	for w := range loggers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := 0; tr.running(); i++ {
				a, st, body := g.login(fmt.Sprintf("%s%d:%d-%d", prefix, (w+i*loggers)%50, w, i))
				tr.note("login", st, body, nil, st == http.StatusOK)
				if st == http.StatusOK {
					tr.mu.Lock()
					tr.answered = append(tr.answered, a)
					tr.mu.Unlock()
				}
			}
		}()
	}
	return tr
}

func (tr *traffic) running() bool {
	select {
	case <-tr.stop:
		return false
	default:
		return true
	}
}

// note counts an answer: ok, a 503 store_unavailable, or a failure.
func (tr *traffic) note(kind string, st int, body string, err error, ok bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.counts[fmt.Sprintf("%s %d", kind, st)]++
	unavailable := st == http.StatusServiceUnavailable && strings.Contains(body, `"store_unavailable"`)
	if err != nil || (!ok && !unavailable) {
		tr.bad = append(tr.bad, fmt.Sprintf("%s: %d %q %v", kind, st, body, err))
	}
}

// finish stops the traffic and fails the test on any answer other than
// 200 or 503 store_unavailable. It returns the logins answered 200.
func (tr *traffic) finish() []session {
	tr.g.t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	tr.g.t.Logf("answers: %v", tr.counts)
	if len(tr.bad) > 0 {
		tr.g.t.Fatalf("%d answers neither right nor 503 store_unavailable, the first: %s", len(tr.bad), tr.bad[0])
	}
	return tr.answered
}
