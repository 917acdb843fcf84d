package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// TestMain runs the package's tests, or, in a child process started by
// startGatewayProcess, one more gateway: `caddy run` of this test binary.
func TestMain(m *testing.M) {
	if gatewaytest.IsSelf() {
		caddycmd.Main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startGatewayProcess runs another gateway of app a in a child process
// (this test binary acting as Caddy), on a free port, with storeBlock as
// its store: its own Redis connections, local cache and admin API, as a
// second machine would have. The in-process admin API then reaches only
// the first gateway's store, and the child learns of changes through
// Redis alone.
func startGatewayProcess(t *testing.T, a *testApp, storeBlock string) *testApp {
	t.Helper()
	port := gatewaytest.FreePort(t)
	site := strings.Replace(a.site(storeBlock), "http://localhost:9080", "http://127.0.0.1:"+strconv.Itoa(port), 1)
	o, err := gatewaytest.Self()
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = t.TempDir()
	o.Caddyfile = "{\n\tadmin off\n\tpersist_config off\n\tgrace_period 1ms\n}\n" + site
	gatewaytest.Run(t, o)
	return a.on("http://127.0.0.1:" + strconv.Itoa(port))
}

// redisStoreBlock is a store redis block of the given settings (one a
// line), for a gateway site.
func redisStoreBlock(settings ...string) string {
	return "store redis {\n\t\t\t" + strings.Join(settings, "\n\t\t\t") + "\n\t\t}"
}

// twoGateways runs two wechat_auth gateways of one app on one Redis inside
// the in-process Caddy: A on localhost:9080, B on 127.0.0.1:9080. Their
// store settings differ in timeout only, which gives each its own Redis
// client and its own local cache, as two Caddy processes would have.
type twoGateways struct {
	A, B *testApp
}

func startTwoGateways(t *testing.T, settings ...string) *twoGateways {
	t.Helper()
	store := func(timeout string) string {
		return redisStoreBlock(append(settings, "cache_ttl 200ms", "timeout "+timeout)...)
	}
	a := newApp(t)
	a.load(globalOptions() + a.site(store("1s")) + otherHost(a.site(store("1001ms"))))
	return &twoGateways{A: a, B: a.on("http://127.0.0.1:9080")}
}

func TestTwoGatewaysShareSessions(t *testing.T) {
	// Persistence on, as in production: a restarted Redis keeps sessions.
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	shareSessions(t, startTwoGateways(t, "address "+srv.Addr()))
}

// shareSessions is the scenario of two gateways sharing sessions: logins,
// retries, phone binding, key rotation and logout through one are seen by
// the other.
func shareSessions(t *testing.T, g *twoGateways) {
	t.Helper()
	g.A.fake.SetPhone("sam", "13700001234", "86")

	// Login on A works on B.
	tok := g.A.login("sam")
	if st, h := g.B.upstreamHeaders(tok); st != 200 || h.Get("X-Wechat-Openid") != g.A.fake.OpenID("sam") {
		t.Fatalf("B does not know A's session: %d", st)
	}
	// A retried code lands on B: same session, no second WeChat call.
	first := g.A.postJSON("/wechat/login", "", map[string]string{"code": "sam:2"})
	again := g.B.postJSON("/wechat/login", "", map[string]string{"code": "sam:2"})
	if first.status != 200 || again.status != 200 || first.body["token"] != again.body["token"] {
		t.Fatalf("retry on B got another session: %s / %s", first.raw, again.raw)
	}
	if n := g.A.fake.Calls(wechattest.APICode2Session); n != 2 {
		t.Fatalf("code2Session calls = %d, want 2", n)
	}
	// Phone bound on A is forwarded by B.
	if r := g.A.postJSON("/wechat/phone", tok, map[string]string{"code": "sam"}); r.status != 200 {
		t.Fatalf("phone on A: %d %s", r.status, r.raw)
	}
	gatewaytest.Eventually(t, 3*time.Second, "B forwards the phone bound on A", func() bool {
		_, h := g.B.upstreamHeaders(tok)
		return h.Get("X-Wechat-Phone") == "13700001234"
	})
	// A re-login on B rotates the key for A too: data sealed for the new
	// key decrypts through A, and so does data sealed for the key before
	// it (the session key grace, kept in Redis), until two rotations.
	old, oldIV, err := g.A.fake.SealPhone("sam")
	if err != nil {
		t.Fatal(err)
	}
	g.B.login("sam:3")
	enc, iv, err := g.A.fake.SealPhone("sam")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ enc, iv string }{{enc, iv}, {old, oldIV}} {
		if r := g.A.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": c.enc, "iv": c.iv}); r.status != 200 {
			t.Fatalf("A decrypting after the key rotated on B: %d %s", r.status, r.raw)
		}
	}
	g.B.login("sam:4")
	expectError(t, g.A.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": old, "iv": oldIV}), 400, "decrypt_failed")
	// Logout on B kills the token on A.
	if r := g.B.do("POST", "/wechat/logout", tok, "", nil); r.status != 204 {
		t.Fatalf("logout on B: %d", r.status)
	}
	gatewaytest.Eventually(t, 3*time.Second, "A refuses the token logged out on B", func() bool {
		st, _ := g.A.upstreamHeaders(tok)
		return st == 401
	})
}

func TestRedisOutageIsNever401(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	g := startTwoGateways(t, "address "+srv.Addr())
	tok := g.A.login("tess")
	srv.Stop()

	// Past the local cache, every request needs Redis: 503, never 401.
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 3; i++ {
		r := g.A.do("GET", "/api/x", tok, "", nil)
		expectError(t, r, 503, "store_unavailable")
	}
	expectError(t, g.B.do("GET", "/wechat/session", tok, "", nil), 503, "store_unavailable")
	expectError(t, g.A.postJSON("/wechat/login", "", map[string]string{"code": "tess:2"}), 503, "store_unavailable")
	// An unknown token cannot be told apart from a known one while the
	// store is down: 503 too, not 401.
	expectError(t, g.A.do("GET", "/api/x", strings.Repeat("A", tokenLength), "", nil), 503, "store_unavailable")

	srv.Restart()
	gatewaytest.Eventually(t, 3*time.Second, "recovery after Redis returns", func() bool {
		st, _ := g.A.upstreamHeaders(tok)
		return st == 200
	})
	if r := g.B.postJSON("/wechat/login", "", map[string]string{"code": "tess:3"}); r.status != 200 {
		t.Fatalf("login after recovery: %d %s", r.status, r.raw)
	}
}

// TestRevocationIsInstant: a logout and an admin revocation through
// gateway A reach gateway B, another process with cache_ttl 5s that has
// the token cached, within 100 ms (B hears of them on the invalidation
// channel); so do a phone binding and a re-login that rotates the
// session key. With B's subscription cut (CLIENT KILL), B still refuses
// a token logged out meanwhile within cache_ttl.
func TestRevocationIsInstant(t *testing.T) {
	srv := redistest.Start(t)
	store := redisStoreBlock("address "+srv.Addr(), "cache_ttl 5s")
	a := newApp(t)
	a.load(globalOptions() + a.site(store))
	b := startGatewayProcess(t, a, store)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	// getCalls counts the GETs Redis has served: a request that adds
	// none was answered from a cache.
	getCalls := func() int {
		info := rdb.Info(ctx, "commandstats").Val()
		for _, line := range strings.Split(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_get:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	// cachedOnB makes sure B answers tok from its cache (so that only an
	// invalidation can make it refuse tok before cache_ttl).
	cachedOnB := func(tok string) {
		t.Helper()
		gatewaytest.Eventually(t, 5*time.Second, "B caches the token", func() bool {
			if st, _ := b.upstreamHeaders(tok); st != 200 {
				t.Fatalf("B: %d", st)
			}
			before := getCalls()
			st, _ := b.upstreamHeaders(tok)
			return st == 200 && getCalls() == before
		})
	}
	// refusedOnB polls B from the moment the change was answered on A,
	// and returns how long B kept honouring the token.
	refusedOnB := func(tok string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			st, _ := b.upstreamHeaders(tok)
			if st == 401 {
				return time.Since(start)
			}
			if st != 200 {
				t.Fatalf("B answered %d", st)
			}
			if time.Since(start) > within {
				t.Fatalf("B still honours the token %v after it was revoked on A", time.Since(start))
			}
		}
	}

	// seenOnB polls B from the moment a change was answered on A until
	// B forwards what it changed, and returns how long that took.
	seenOnB := func(tok, header, want string) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			st, h := b.upstreamHeaders(tok)
			if st != 200 {
				t.Fatalf("B answered %d", st)
			}
			if h.Get(header) == want {
				return time.Since(start)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("B still forwards %s %q %v after the change on A", header, h.Get(header), time.Since(start))
			}
		}
	}

	const trials = 5
	var lags, changeLags []time.Duration
	for i := range trials {
		// A phone bound through A, then a re-login through A that
		// rotates the session key and brings a unionid: B forwards
		// both.
		user := fmt.Sprintf("yuki%d", i)
		tok := a.login(user)
		cachedOnB(tok)
		a.fake.SetPhone(user, fmt.Sprintf("1370000%04d", i), "86")
		if r := a.postJSON("/wechat/phone", tok, map[string]string{"code": user}); r.status != 200 {
			t.Fatalf("phone on A: %d %s", r.status, r.raw)
		}
		changeLags = append(changeLags, seenOnB(tok, "X-Wechat-Phone", fmt.Sprintf("1370000%04d", i)))
		cachedOnB(tok)
		a.fake.SetUnionID(user, "oUnion-"+user)
		a.login(user + ":2")
		changeLags = append(changeLags, seenOnB(tok, "X-Wechat-Unionid", "oUnion-"+user))

		// Logout on A.
		tok = a.login(fmt.Sprintf("ulla:%d", 2*i+1))
		cachedOnB(tok)
		if r := a.do("POST", "/wechat/logout", tok, "", nil); r.status != 204 {
			t.Fatalf("logout on A: %d", r.status)
		}
		lags = append(lags, refusedOnB(tok, 5*time.Second))

		// Admin revocation on A (A's admin API; B is another process).
		tok = a.login(fmt.Sprintf("vera:%d", 2*i+1))
		tok2 := a.login(fmt.Sprintf("vera:%d", 2*i+2))
		cachedOnB(tok)
		cachedOnB(tok2)
		if st, body := adminDo(t, "DELETE", "/wechat_auth/users/"+a.fake.OpenID("vera")); st != 200 || !strings.Contains(body, `"revoked":2`) {
			t.Fatalf("admin revoke on A: %d %s", st, body)
		}
		lags = append(lags, refusedOnB(tok, 5*time.Second), refusedOnB(tok2, 5*time.Second))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	t.Logf("B refused a token logged out or revoked on A after %v (min), %v (median), %v (max) of %d", lags[0], lags[len(lags)/2], lags[len(lags)-1], len(lags))
	sort.Slice(changeLags, func(i, j int) bool { return changeLags[i] < changeLags[j] })
	t.Logf("B forwarded a phone bound or a unionid brought by a re-login on A after %v (min), %v (median), %v (max) of %d",
		changeLags[0], changeLags[len(changeLags)/2], changeLags[len(changeLags)-1], len(changeLags))
	if worst := lags[len(lags)-1]; worst > 100*time.Millisecond {
		t.Fatalf("B honoured a revoked token for %v (want within 100ms; cache_ttl is 5s)", worst)
	}
	if worst := changeLags[len(changeLags)-1]; worst > 100*time.Millisecond {
		t.Fatalf("B forwarded a user's old record for %v after the change (want within 100ms; cache_ttl is 5s)", worst)
	}

	// The subscription cut: B notices, subscribes again and drops its
	// cache; whatever it missed meanwhile, within cache_ttl it refuses.
	tok := a.login("wanda")
	cachedOnB(tok)
	if n, err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result(); err != nil || n < 2 {
		t.Fatalf("CLIENT KILL TYPE pubsub: %d, %v (want A's and B's subscriptions)", n, err)
	}
	if r := a.do("POST", "/wechat/logout", tok, "", nil); r.status != 204 {
		t.Fatalf("logout on A: %d", r.status)
	}
	lag := refusedOnB(tok, 5*time.Second)
	t.Logf("with the subscription cut: B refused the token after %v (cache_ttl 5s)", lag)
}

// TestLogoutIsImmediate: on the gateway that answered a logout (or an
// admin revocation) 204 (200), no request that starts afterwards is
// served, while other requests with the token run throughout. Tried many
// times; TestRedisStoreLogoutIsImmediate tries the store's race in a
// tighter loop.
func TestLogoutIsImmediate(t *testing.T) {
	srv := redistest.Start(t)
	a := startGateway(t, redisStoreBlock("address "+srv.Addr(), "cache_ttl 1m"))
	for i := range 40 {
		code := fmt.Sprintf("xena:%d", i+1)
		tok := a.login(code)
		if st, _ := a.upstreamHeaders(tok); st != 200 {
			t.Fatalf("fresh token: %d", st)
		}
		var done atomic.Bool
		var served atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					after := done.Load()
					req, _ := http.NewRequest("GET", gatewayBase+"/api/x", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := a.client.Do(req)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 && after {
						served.Add(1)
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		if i%2 == 0 {
			if r := a.do("POST", "/wechat/logout", tok, "", nil); r.status != 204 {
				t.Fatalf("logout: %d", r.status)
			}
		} else if st, body := adminDo(t, "DELETE", "/wechat_auth/users/"+a.fake.OpenID("xena")); st != 200 {
			t.Fatalf("admin revoke: %d %s", st, body)
		}
		done.Store(true)
		time.Sleep(5 * time.Millisecond)
		close(stop)
		wg.Wait()
		if n := served.Load(); n > 0 {
			t.Fatalf("trial %d: %d requests that started after the logout was answered were served", i, n)
		}
	}
}
