package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// failoverTraffic sends requests with tokens through gateways until
// stopped: pass-through (answered from the local cache when it can) and
// GET /wechat/session (always from Redis). It fails the test on any
// answer other than 200 or 503 store_unavailable, and measures the time
// from the first 503 to the last.
type failoverTraffic struct {
	t                   *testing.T
	stop                chan struct{}
	wg                  sync.WaitGroup
	ok, unavailable     atomic.Int64
	firstFail, lastFail atomic.Int64
	bad                 atomic.Value
}

func startFailoverTraffic(t *testing.T, gateways []*testApp, tokens []string) *failoverTraffic {
	f := &failoverTraffic{t: t, stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	for gi, g := range gateways {
		for w := range 2 {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				for i := w; ; i++ {
					select {
					case <-f.stop:
						return
					default:
					}
					path := "/api/x"
					if i%2 == 1 {
						path = "/wechat/session"
					}
					base := g.base
					if base == "" {
						base = gatewayBase
					}
					req, _ := http.NewRequest("GET", base+path, nil)
					req.Header.Set("Authorization", "Bearer "+tokens[(i+gi)%len(tokens)])
					resp, err := client.Do(req)
					if err != nil {
						f.bad.Store(fmt.Sprintf("%s%s: %v", base, path, err))
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode == 200:
						f.ok.Add(1)
					case resp.StatusCode == 503 && strings.Contains(string(body), `"store_unavailable"`):
						now := time.Now().UnixNano()
						f.firstFail.CompareAndSwap(0, now)
						f.lastFail.Store(now)
						f.unavailable.Add(1)
						time.Sleep(5 * time.Millisecond)
					default:
						f.bad.Store(fmt.Sprintf("%s%s: %d %s", base, path, resp.StatusCode, body))
					}
				}
			}()
		}
	}
	return f
}

// end stops the traffic, fails on a wrong answer, and returns the 503
// window.
func (f *failoverTraffic) end() time.Duration {
	f.t.Helper()
	close(f.stop)
	f.wg.Wait()
	if b := f.bad.Load(); b != nil {
		f.t.Fatalf("during the failover a request was answered neither 200 nor 503 store_unavailable: %v", b)
	}
	if f.firstFail.Load() == 0 {
		return 0
	}
	return time.Duration(f.lastFail.Load() - f.firstFail.Load())
}

// allServe waits until every token passes through every gateway and
// reads its session.
func allServe(t *testing.T, gateways []*testApp, tokens []string, within time.Duration) {
	t.Helper()
	gatewaytest.Eventually(t, within, "every token served again", func() bool {
		for _, g := range gateways {
			for _, tok := range tokens {
				if st, _ := g.upstreamHeaders(tok); st != 200 {
					return false
				}
				if r := g.do("GET", "/wechat/session", tok, "", nil); r.status != 200 {
					return false
				}
			}
		}
		return true
	})
}

// TestSentinelFailover: two gateways (this process and another) on a
// Sentinel-managed primary with a replica; traffic flows while the
// primary is killed and the sentinels promote the replica. No request is
// answered 401; requests that need Redis answer 503 for a while (the
// window is logged), and then everything works again by itself: old
// tokens, logins, logouts.
func TestSentinelFailover(t *testing.T) {
	sn := redistest.StartSentinel(t, redistest.SentinelOptions{})
	store := redisStoreBlock("mode sentinel", "address "+strings.Join(sn.Addrs(), " "), "master_name "+redistest.MasterName)
	a := newApp(t)
	a.load(globalOptions() + a.site(store))
	b := startGatewayProcess(t, a, store)
	gateways := []*testApp{a, b}
	var tokens []string
	for i := range 6 {
		tokens = append(tokens, gateways[i%2].login(fmt.Sprintf("user%d", i)))
	}
	allServe(t, gateways, tokens, 5*time.Second)

	traffic := startFailoverTraffic(t, gateways, tokens)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	old := sn.KillPrimary()
	now := sn.WaitFailover(old, 30*time.Second)
	promoted := time.Since(start)
	allServe(t, gateways, tokens, 15*time.Second)
	window := traffic.end()
	t.Logf("primary %s killed; replica %s promoted after %v; 503 store_unavailable for %v (%d answers 503, %d answers 200, no 401)",
		old, now, promoted.Round(time.Millisecond), window.Round(time.Millisecond), traffic.unavailable.Load(), traffic.ok.Load())

	afterFailover(t, a, b, tokens)
}

// afterFailover: logins, logouts and revocations work again, on both
// gateways.
func afterFailover(t *testing.T, a, b *testApp, tokens []string) {
	t.Helper()
	tok := b.login("user0:2")
	if st, _ := a.upstreamHeaders(tok); st != 200 {
		t.Fatalf("a login after the failover on B, used on A: %d", st)
	}
	if r := a.do("POST", "/wechat/logout", tokens[1], "", nil); r.status != 204 {
		t.Fatalf("logout after the failover: %d", r.status)
	}
	gatewaytest.Eventually(t, 3*time.Second, "the logout seen on B", func() bool {
		st, _ := b.upstreamHeaders(tokens[1])
		return st == 401
	})
	if st, _ := b.upstreamHeaders(tokens[0]); st != 200 {
		t.Fatalf("an old token after the failover: %d", st)
	}
}

// TestClusterTwoGateways: TestTwoGatewaysShareSessions on a Redis Cluster
// of three primaries, then a primary is killed under traffic and its
// replica promoted: no 401, the 503 window logged, and everything works
// again by itself.
func TestClusterTwoGateways(t *testing.T) {
	cl := redistest.StartCluster(t, nil)
	seeds := "address " + strings.Join(cl.Addrs(), " ")
	g := startTwoGateways(t, "mode cluster", seeds)
	shareSessions(t, g)

	var tokens []string
	for i := range 6 {
		tokens = append(tokens, []*testApp{g.A, g.B}[i%2].login(fmt.Sprintf("user%d", i)))
	}
	cl.WaitReplicated()
	gateways := []*testApp{g.A, g.B}
	allServe(t, gateways, tokens, 5*time.Second)

	traffic := startFailoverTraffic(t, gateways, tokens)
	time.Sleep(200 * time.Millisecond)
	// The primary that holds user0's record (and some sessions).
	key := "wechat_auth:" + g.A.appID + ":u:{" + g.A.fake.OpenID("user0") + "}"
	start := time.Now()
	killed := cl.KillPrimaryFor(key)
	promoted := cl.WaitFailover(killed, key, 30*time.Second)
	took := time.Since(start)
	allServe(t, gateways, tokens, 15*time.Second)
	window := traffic.end()
	t.Logf("primary %s killed; replica %s promoted after %v; 503 store_unavailable for %v (%d answers 503, %d answers 200, no 401)",
		killed.Addr(), promoted.Addr(), took.Round(time.Millisecond), window.Round(time.Millisecond), traffic.unavailable.Load(), traffic.ok.Load())

	afterFailover(t, g.A, g.B, tokens)
}
