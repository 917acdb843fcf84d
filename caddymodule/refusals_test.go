package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// WeChat's quota is the app's, and no client may
// spend it with codes WeChat refuses.

// behindProxy trusts the loopback proxy's X-Forwarded-For, so that a test
// can speak as many clients: {client_ip} is then the forwarded address.
func behindProxy(global string) string {
	return strings.Replace(global, "skip_install_trust", "skip_install_trust\n\tservers {\n\t\ttrusted_proxies static private_ranges\n\t}", 1)
}

// loginFrom posts code to the login endpoint as client ip (through the
// trusted proxy; "" sends no X-Forwarded-For).
func (a *testApp) loginFrom(ip, code string) response {
	a.t.Helper()
	var headers []string
	if ip != "" {
		headers = []string{"X-Forwarded-For", ip}
	}
	return a.do(http.MethodPost, "/wechat/login", "", "application/json",
		strings.NewReader(`{"code":"`+code+`"}`), headers...)
}

// expectLimited checks a 429 of the refused-code limit, with a
// Retry-After of whole seconds in (0, window].
func expectLimited(t *testing.T, r response, window time.Duration) {
	t.Helper()
	expectError(t, r, http.StatusTooManyRequests, "rate_limited")
	s, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || s < 1 || time.Duration(s)*time.Second > window {
		t.Fatalf("Retry-After = %q, want whole seconds in [1, %v]", r.header.Get("Retry-After"), window)
	}
}

func TestRefusedCodeLimit(t *testing.T) {
	a := newApp(t)
	a.load(behindProxy(globalOptions()) + a.site(""))
	calls := func() int { return a.fake.Calls(wechattest.APICode2Session) }

	// 200 distinct invalid codes from one client: 20 reach WeChat, the
	// rest are answered 429 without a call.
	const attacker = "203.0.113.7"
	for i := range 200 {
		r := a.loginFrom(attacker, fmt.Sprintf("bad-%d", i))
		if i < 20 {
			expectError(t, r, http.StatusUnauthorized, "invalid_code")
		} else {
			expectLimited(t, r, time.Minute)
		}
	}
	if n := calls(); n != 20 {
		t.Fatalf("200 invalid codes made %d WeChat calls, want 20", n)
	}
	// Until its window ends, the client's logins are all refused, valid
	// codes too (the limit knows addresses, not users).
	expectLimited(t, a.loginFrom(attacker, "alice"), time.Minute)
	if n := calls(); n != 20 {
		t.Fatalf("a limited client reached WeChat: %d calls", n)
	}

	// Another client is not limited.
	if r := a.loginFrom("203.0.113.8", "bob"); r.status != 200 {
		t.Fatalf("another client: %d %s", r.status, r.raw)
	}

	// Honest users behind one address: valid logins never count, so 60
	// of them beside 19 refusals all pass.
	const nat = "198.51.100.1"
	for i := range 60 {
		if r := a.loginFrom(nat, fmt.Sprintf("carol:%d", i)); r.status != 200 {
			t.Fatalf("honest login %d behind one address: %d %s", i, r.status, r.raw)
		}
		if i < 19 {
			expectError(t, a.loginFrom(nat, fmt.Sprintf("bad-nat-%d", i)), http.StatusUnauthorized, "invalid_code")
		}
	}

	// The same invalid code 20 times: one WeChat call (the refusal is
	// remembered), and each repeat counts, so the 21st is 429.
	before := calls()
	const hammer = "198.51.100.2"
	for range 20 {
		expectError(t, a.loginFrom(hammer, "bad-same"), http.StatusUnauthorized, "invalid_code")
	}
	if n := calls() - before; n != 1 {
		t.Fatalf("the same invalid code 20 times made %d WeChat calls, want 1", n)
	}
	expectLimited(t, a.loginFrom(hammer, "bad-same"), time.Minute)
	// Remembered for everyone: another client's repeat costs no call
	// either, and is answered exactly as WeChat's refusal was.
	expectError(t, a.loginFrom("198.51.100.3", "bad-same"), http.StatusUnauthorized, "invalid_code")
	if n := calls() - before; n != 1 {
		t.Fatalf("a remembered refusal reached WeChat: %d calls", n)
	}

	// IPv6 clients count by /64: the next address of the block is the
	// same client, the next block another one.
	for i := range 20 {
		a.loginFrom(fmt.Sprintf("2001:db8:1:2::%x", i+1), fmt.Sprintf("bad-v6-%d", i))
	}
	expectLimited(t, a.loginFrom("2001:db8:1:2:ffff::1", "bad-v6-x"), time.Minute)
	if r := a.loginFrom("2001:db8:1:3::1", "dora"); r.status != 200 {
		t.Fatalf("another /64: %d %s", r.status, r.raw)
	}
}

// Without trusted_proxies, X-Forwarded-For is the client's own claim and
// changes nothing: {client_ip} is the connection's address.
func TestRefusedCodeLimitIgnoresUntrustedForwarding(t *testing.T) {
	a := startGateway(t, "refused_code_limit 5")
	for i := range 5 {
		expectError(t, a.loginFrom(fmt.Sprintf("192.0.2.%d", i+1), fmt.Sprintf("bad-%d", i)), http.StatusUnauthorized, "invalid_code")
	}
	expectLimited(t, a.loginFrom("192.0.2.99", "bad-x"), time.Minute)
	expectLimited(t, a.loginFrom("", "bad-y"), time.Minute)
}

func TestRefusedCodeLimitSettings(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		a := startGateway(t, "refused_code_limit off")
		for i := range 30 {
			expectError(t, a.loginFrom("", fmt.Sprintf("bad-%d", i)), http.StatusUnauthorized, "invalid_code")
		}
		if n := a.fake.Calls(wechattest.APICode2Session); n != 30 {
			t.Fatalf("30 invalid codes made %d calls with the limit off, want 30", n)
		}
		// Refusals are still remembered.
		for range 5 {
			expectError(t, a.loginFrom("", "bad-0"), http.StatusUnauthorized, "invalid_code")
		}
		if n := a.fake.Calls(wechattest.APICode2Session); n != 30 {
			t.Fatalf("a remembered refusal reached WeChat: %d calls", n)
		}
	})
	t.Run("count and window", func(t *testing.T) {
		a := startGateway(t, "refused_code_limit 3 1h")
		for i := range 3 {
			expectError(t, a.loginFrom("", fmt.Sprintf("bad-%d", i)), http.StatusUnauthorized, "invalid_code")
		}
		r := a.loginFrom("", "bad-3")
		expectLimited(t, r, time.Hour)
		if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 3000 {
			t.Fatalf("Retry-After = %d s, want the rest of an hour", s)
		}
	})
}

// A burst of simultaneous bad codes cannot all reach WeChat before the
// first refusal is counted; a burst of good ones all passes.
func TestRefusedCodeLimitConcurrent(t *testing.T) {
	a := newApp(t)
	a.load(behindProxy(globalOptions()) + a.site(""))
	a.fake.SetDelay(wechattest.APICode2Session, 50*time.Millisecond)
	burst := func(ip, prefix string, n int) map[int]int {
		var (
			mu       sync.Mutex
			statuses = map[int]int{}
			wg       sync.WaitGroup
		)
		for i := range n {
			wg.Go(func() {
				r := a.loginFrom(ip, fmt.Sprintf("%s%d", prefix, i))
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return statuses
	}
	got := burst("203.0.113.9", "bad-", 100)
	if n := a.fake.Calls(wechattest.APICode2Session); n > 20 {
		t.Fatalf("100 simultaneous invalid codes made %d WeChat calls, want at most 20", n)
	}
	if got[401] != 20 || got[429] != 80 {
		t.Fatalf("answers = %v, want 20 x 401 and 80 x 429", got)
	}
	if got := burst("203.0.113.10", "erin:", 60); got[200] != 60 {
		t.Fatalf("60 simultaneous honest logins from one address: %v", got)
	}
}

// A refusal remembered through one gateway holds on another that shares
// the Redis store: the repeat costs no call there either.
func TestRefusedCodeRememberedAcrossGateways(t *testing.T) {
	g := startTwoGateways(t, "address "+redistest.Start(t).Addr())
	expectError(t, g.A.loginFrom("", "bad-shared"), http.StatusUnauthorized, "invalid_code")
	expectError(t, g.B.loginFrom("", "bad-shared"), http.StatusUnauthorized, "invalid_code")
	if n := g.A.fake.Calls(wechattest.APICode2Session); n != 1 {
		t.Fatalf("code2Session calls = %d, want 1", n)
	}
}

// A client that goes away while its login waits for the ones ahead of it
// (the limit counts logins in flight as possible refusals) was not
// limited: it is not counted as rate_limited.
func TestRefusedCodeLimitWaiterGone(t *testing.T) {
	a := newApp(t)
	a.load(behindProxy(globalOptions()) + a.site("refused_code_limit 1"))
	a.fake.SetDelay(wechattest.APICode2Session, 700*time.Millisecond)
	const ip = "203.0.113.11"
	first := make(chan response)
	go func() { first <- a.loginFrom(ip, "olga:1") }()
	time.Sleep(200 * time.Millisecond) // (the first is with WeChat)

	base := a.base
	if base == "" {
		base = gatewayBase
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/wechat/login", strings.NewReader(`{"code":"olga:2"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	if resp, err := a.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the waiting login was answered %d before its client gave up", resp.StatusCode)
	}
	if r := <-first; r.status != http.StatusOK {
		t.Fatalf("the first login: %d %s", r.status, r.raw)
	}
	_, body := adminDo(t, "GET", "/metrics")
	if strings.Contains(body, `result="rate_limited"`) {
		t.Fatalf("a login whose client went away while waiting counted as rate_limited:\n%s", grepLines(body, "logins_total"))
	}
}

func keyOf(s string) clientKey { return netip.MustParseAddr(s).As16() }

// refuse makes n logins of client that WeChat refuses.
func refuse(t *testing.T, l *refusalLimiter, client clientKey, n int) {
	t.Helper()
	for i := range n {
		release, _, ok := l.acquire(context.Background(), client)
		if !ok {
			t.Fatalf("refusal %d: limited early", i)
		}
		release(true)
	}
}

func TestRefusalLimiterWindow(t *testing.T) {
	l := newRefusalLimiter(3, time.Minute)
	c := keyOf("192.0.2.1")
	refuse(t, l, c, 2)
	// Accepted logins do not count.
	for range 10 {
		release, _, ok := l.acquire(context.Background(), c)
		if !ok {
			t.Fatal("an accepted login was limited")
		}
		if release(false) {
			t.Fatal("an accepted login reached the limit")
		}
	}
	release, _, _ := l.acquire(context.Background(), c)
	if !release(true) {
		t.Fatal("the third refusal should report reaching the limit")
	}
	_, retryAfter, ok := l.acquire(context.Background(), c)
	if ok || retryAfter <= 0 || retryAfter > time.Minute {
		t.Fatalf("over the limit: ok=%v retryAfter=%v", ok, retryAfter)
	}
	// Once the window (counted from the first refusal) is over, the
	// client starts afresh: move the limiter's clock a window ahead.
	l.epoch = l.epoch.Add(-time.Minute)
	refuse(t, l, c, 3)
	if _, _, ok := l.acquire(context.Background(), c); ok {
		t.Fatal("the new window did not count")
	}
}

// The table holds at most refusalShards*refusalShardCapacity clients,
// however many send refused codes, and the newest are counted.
func TestRefusalLimiterBoundedMemory(t *testing.T) {
	l := newRefusalLimiter(2, time.Minute)
	const clients = 4 * refusalShards * refusalShardCapacity
	var last clientKey
	for i := range clients {
		last = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
		refuse(t, l, last, 1)
	}
	total := 0
	for i := range l.shards {
		n := len(l.shards[i].clients)
		if n > refusalShardCapacity {
			t.Fatalf("shard %d holds %d clients, capacity %d", i, n, refusalShardCapacity)
		}
		total += n
	}
	if total > refusalShards*refusalShardCapacity {
		t.Fatalf("%d clients kept", total)
	}
	refuse(t, l, last, 1)
	if _, _, ok := l.acquire(context.Background(), last); ok {
		t.Fatal("the newest client's count was lost")
	}
}

// Logins that wait for a place (every place below the limit taken by
// logins in flight) go on when one ends accepted, and are refused when
// the refusals reach the limit; a waiter whose client goes away stops.
func TestRefusalLimiterWaiters(t *testing.T) {
	l := newRefusalLimiter(2, time.Minute)
	c := keyOf("2001:db8::1")
	r1, _, _ := l.acquire(context.Background(), c)
	r2, _, _ := l.acquire(context.Background(), c)

	type result struct {
		release func(bool) bool
		ok      bool
	}
	wait := func() chan result {
		ch := make(chan result, 1)
		go func() {
			release, _, ok := l.acquire(context.Background(), c)
			ch <- result{release, ok}
		}()
		return ch
	}
	w := wait()
	select {
	case <-w:
		t.Fatal("a third login went on with two in flight and a limit of 2")
	case <-time.After(50 * time.Millisecond):
	}
	r1(false) // accepted: a place is free again
	got := <-w
	if !got.ok {
		t.Fatal("the waiter was refused after an accepted login")
	}
	w = wait()
	r2(true)
	got.release(true) // two refusals: the limit
	if res := <-w; res.ok {
		t.Fatal("the waiter went on after the limit was reached")
	}

	// A waiter whose request is cancelled returns.
	d := keyOf("192.0.2.2")
	l.acquire(context.Background(), d)
	l.acquire(context.Background(), d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool, 1)
	go func() { _, _, ok := l.acquire(ctx, d); done <- ok }()
	cancel()
	if <-done {
		t.Fatal("a cancelled waiter went on")
	}
}

func TestClientOf(t *testing.T) {
	for _, c := range []struct{ ip, same, other string }{
		{"192.0.2.1", "::ffff:192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:3::1"},
		{"fe80::1%eth0", "fe80::2", "fe80:0:0:1::1"},
	} {
		key := func(ip string) clientKey {
			r := httptest.NewRequest("POST", "/wechat/login", nil)
			r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), nil, nil)
			caddyhttp.SetVar(r.Context(), caddyhttp.ClientIPVarKey, ip)
			return clientOf(r)
		}
		if key(c.ip) != key(c.same) {
			t.Errorf("%s and %s should be one client", c.ip, c.same)
		}
		if key(c.ip) == key(c.other) {
			t.Errorf("%s and %s should be two clients", c.ip, c.other)
		}
	}
	// Without Caddy's variable, the connection's address.
	r := httptest.NewRequest("POST", "/wechat/login", nil)
	r.RemoteAddr = "192.0.2.9:4321"
	if clientOf(r) != keyOf("192.0.2.9") {
		t.Error("RemoteAddr fallback")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Minute: 60,
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
