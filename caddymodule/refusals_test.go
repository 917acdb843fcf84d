package caddymodule

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

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
