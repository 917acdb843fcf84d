package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// TestReloadUnderLoad reloads the config again and again while clients
// keep calling through the gateway: no request may be answered with
// anything but 200 (no 401 while the store is handed over, no 5xx) and no
// session may be lost. The load is bounded in count and time.
//
// Caddy core itself can drop a connection that the stopping server had
// just accepted (the client sees EOF with no answer at all); that is
// outside this plugin, so such drops are counted and reported, and only a
// rate that points at something else fails the test.
func TestReloadUnderLoad(t *testing.T) {
	a := newApp(t)
	cfg := func(i int) string {
		// In-flight requests get the default-like grace period here, not
		// the 1ms the other tests use to reload fast.
		return strings.Replace(globalOptions(), "grace_period 1ms", "grace_period 10s", 1) + a.site(fmt.Sprintf("session_ttl %dh", 700+i))
	}
	a.load(cfg(0))
	tokens := []string{a.login("p1"), a.login("p2"), a.login("p3"), a.login("p4")}

	var (
		done             = make(chan struct{})
		wg               sync.WaitGroup
		requests, failed atomic.Int64
		dropped          atomic.Int64
		firstFailure     atomic.Value
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(tok string) {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for i := 0; i < 5000; i++ {
				select {
				case <-done:
					return
				default:
				}
				req, _ := http.NewRequest("GET", gatewayBase+"/api/load", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				requests.Add(1)
				if err != nil {
					dropped.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, resp.Status)
				}
			}
		}(tokens[w])
	}
	for i := 1; i <= 5; i++ {
		a.load(cfg(i))
		time.Sleep(50 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	if requests.Load() == 0 {
		t.Fatal("no request ran during the reloads")
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", n, requests.Load(), firstFailure.Load())
	}
	if d := dropped.Load(); d*20 > requests.Load() {
		t.Fatalf("%d of %d connections dropped during reloads", d, requests.Load())
	}
	for _, tok := range tokens {
		if st, _ := a.upstreamHeaders(tok); st != 200 {
			t.Fatalf("a session was lost across reloads: %d", st)
		}
	}
	t.Logf("%d requests across 5 reloads: none answered other than 200; %d connections dropped by Caddy's listener hand-over", requests.Load(), dropped.Load())
}

// TestWeChatFaultTable drives the phone-code path (which needs an access
// token) and the login path through WeChat's failure modes; each gets the
// spec's status and the gateway keeps serving.
func TestWeChatFaultTable(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("quinn")
	cases := []struct {
		name   string
		setup  func()
		status int
		code   string
	}{
		{"40001 storm", func() { a.fake.FailNext(wechattest.APIPhoneNumber, 40001, 2) }, 502, "wechat_error"},
		{"token endpoint html", func() {
			a.fake.RevokeTokens()
			a.fake.RespondNext(wechattest.APIStableToken, 1, 502, "text/html", "<html>bad gateway</html>")
		}, 502, "wechat_error"},
		{"token endpoint bad secret", func() {
			a.fake.RevokeTokens()
			a.fake.FailNext(wechattest.APIStableToken, 40125, 3)
		}, 502, "wechat_error"},
		{"phone slow", func() { a.fake.SetDelay(wechattest.APIPhoneNumber, 5*time.Second) }, 504, "wechat_timeout"},
		{"phone truncated", func() {
			a.fake.RespondNext(wechattest.APIPhoneNumber, 1, 200, "application/json", `{"errcode":0,"phone_info":{"phoneNumber":"1`)
		}, 502, "wechat_error"},
		{"phone rate limited", func() { a.fake.FailNext(wechattest.APIPhoneNumber, 45011, 1) }, 429, "rate_limited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := a.fake.Calls(wechattest.APIStableToken)
			c.setup()
			defer func() {
				for _, api := range []wechattest.API{wechattest.APIPhoneNumber, wechattest.APIStableToken} {
					a.fake.SetDelay(api, 0)
					a.fake.FailNext(api, 0, 0)
					a.fake.RespondNext(api, 0, 0, "", "")
				}
			}()
			expectError(t, a.postJSON("/wechat/phone", tok, map[string]string{"code": "quinn"}), c.status, c.code)
			if n := a.fake.Calls(wechattest.APIStableToken) - before; n > 3 {
				t.Errorf("%d stable_token calls for one request: refreshes must be bounded", n)
			}
			// The gateway still serves.
			if st, _ := a.upstreamHeaders(tok); st != 200 {
				t.Fatalf("pass-through after %s: %d", c.name, st)
			}
		})
	}
	// And WeChat recovering heals everything.
	r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "quinn:ok"})
	if r.status != 200 {
		t.Fatalf("after the faults: %d %s", r.status, r.raw)
	}
}

// TestTokenShapes: tokens of the wrong length, alphabet or app are all 401
// and never reach the store as anything but a miss.
func TestTokenShapes(t *testing.T) {
	a := startGateway(t, "")
	good := a.login("rita")
	other := startGateway(t, "") // another app: the config now serves only it
	otherTok := other.login("rita")
	_ = good
	for name, tok := range map[string]string{
		"empty":          "",
		"one char":       "a",
		"42 chars":       strings.Repeat("a", 42),
		"44 chars":       strings.Repeat("a", 44),
		"padding":        strings.Repeat("a", 42) + "=",
		"std base64":     strings.Repeat("a", 41) + "+/",
		"unicode":        strings.Repeat("a", 40) + "é",
		"huge":           strings.Repeat("a", 8000),
		"of another app": good,
	} {
		r := other.do("GET", "/api/x", "", "", nil, "Authorization", "Bearer "+tok)
		if r.status != 401 || r.body["error"] != "unauthenticated" {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if st, _ := other.upstreamHeaders(otherTok); st != 200 {
		t.Fatalf("the app's own token: %d", st)
	}
}

// TestSnapshotKeepsSessionsAcrossRestart stops the memory store (a config
// without the app drops its last user, as stopping Caddy would) and starts
// it again from its snapshot: the session lives on.
func TestSnapshotKeepsSessionsAcrossRestart(t *testing.T) {
	snap := t.TempDir() + "/sessions.snap"
	a := newApp(t)
	fake := a.fake
	withSnapshot := globalOptions() + a.site("store memory {\n\t\t\tsnapshot "+snap+"\n\t\t}")
	a.load(withSnapshot)
	fake.SetPhone("uma", "13511112222", "86")
	tok := a.login("uma")
	if r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "uma"}); r.status != 200 {
		t.Fatalf("phone: %d %s", r.status, r.raw)
	}

	// Another app only: the store of ours is destroyed and saved.
	other := newApp(t)
	a.load(globalOptions() + other.site(""))
	if st, _ := a.upstreamHeaders(tok); st != 401 {
		t.Fatalf("the token worked on another app: %d", st)
	}

	a.load(withSnapshot)
	st, h := a.upstreamHeaders(tok)
	if st != 200 || h.Get("X-Wechat-Openid") != fake.OpenID("uma") || h.Get("X-Wechat-Phone") != "13511112222" {
		t.Fatalf("after the restart: %d %v", st, h)
	}
}
