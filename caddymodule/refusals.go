package caddymodule

import (
	"context"
	"hash/maphash"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// WeChat's quota is the app's: every call to code2Session counts against
// it, and once it is spent (45011) every user of the app is refused. A
// client sending made-up codes must not be able to spend it. Two
// defences, both in front of the WeChat call:
//
//   - A code WeChat refused is remembered for five minutes, as its kept
//     answer (keptanswer.go), so it holds across gateways with a shared
//     store: sending it again costs no call.
//   - refusalLimiter bounds the codes WeChat refuses per client: after
//     RefusedCodeLimit refusals within RefusedCodeWindow, the client's
//     logins answer 429 until the window is over, without a call.
//
// Refusals are counted, never logins: many honest users share one
// address behind a carrier's NAT, and their codes are valid. Stricter or
// different policies (logins per address, per path, across instances)
// belong to a rate limiting handler such as mholt/caddy-ratelimit in
// front of this one.

// The limiter's table: a fixed number of shards, each holding at most
// refusalShardCapacity clients. Its memory is bounded whatever the number
// of clients (about 96 B a client with the maps' overhead: 6 MiB when
// full, as measured). A client is in it while it has a login in flight
// or a refused code; an entry whose window is over stays until it is
// touched again or its shard needs the room. When a shard is full, a
// new client evicts the least harmful of a few sampled entries (a window
// that ended, else the fewest refusals): an attacker who churns through
// more addresses than the table holds can at worst forget some of his
// own counts, which a per-address limit cannot stop anyway (that needs a
// broader key, see above).
const (
	refusalShards         = 64
	refusalShardCapacity  = 1024
	refusalEvictionSample = 8
)

// refusalLimiter counts the login codes WeChat refused, per client.
type refusalLimiter struct {
	limit  uint32
	window time.Duration
	epoch  time.Time // monotonic origin of the entries' times
	seed   maphash.Seed
	shards [refusalShards]refusalShard
}

type refusalShard struct {
	mu      sync.Mutex
	clients map[clientKey]refusalCount
}

// clientKey is a client address in 16 bytes (IPv4 mapped into IPv6),
// fixed-size so that the table holds no strings.
type clientKey [16]byte

// refusalCount is one client's window.
type refusalCount struct {
	start    time.Duration // since epoch: the window's first refusal
	refused  uint32        // refusals in the window
	inflight uint32        // logins of this client waiting for WeChat
	// wake is closed (and cleared) when an in-flight login ends, for
	// logins that wait for a place; nil while nobody waits.
	wake chan struct{}
}

func newRefusalLimiter(limit int, window time.Duration) *refusalLimiter {
	l := &refusalLimiter{
		limit:  uint32(min(max(limit, 1), maxRefusedCodeLimit)),
		window: window,
		epoch:  time.Now(),
		seed:   maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i].clients = make(map[clientKey]refusalCount)
	}
	return l
}

// clientOf is the client a login is counted against: Caddy's client IP,
// which is the connection's address unless it comes from one of the
// server's trusted_proxies (then the forwarded address). An IPv6 client
// counts by its /64, the block one subscriber gets, which an attacker
// could otherwise walk through address by address.
func clientOf(r *http.Request) clientKey {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" {
		ip, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		// Never seen from Caddy; unknown clients share one count.
		return clientKey{}
	}
	addr = addr.WithZone("").Unmap()
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr.As16()
}

func (l *refusalLimiter) shard(c clientKey) *refusalShard {
	return &l.shards[maphash.Comparable(l.seed, c)%refusalShards]
}

func (l *refusalLimiter) now() time.Duration { return time.Since(l.epoch) }

// acquire lets a login of client go on to WeChat. ok false means the
// client is over its limit, and retryAfter says when its window ends.
// Otherwise release must be called when the login is answered, saying
// whether WeChat (or the memory of WeChat's answer) refused the code; it
// reports whether that refusal was the one that reached the limit.
//
// Logins in flight hold a place of the limit until they are answered, so
// that a burst of simultaneous bad codes cannot all reach WeChat before
// the first refusal is counted: at most limit refusals per window, in
// any case. A login that finds every remaining place taken by logins in
// flight waits for one of them to end rather than being refused; honest
// bursts from one address are only delayed, and only after refusals.
func (l *refusalLimiter) acquire(ctx context.Context, client clientKey) (release func(refused bool) (reachedLimit bool), retryAfter time.Duration, ok bool) {
	s := l.shard(client)
	for {
		s.mu.Lock()
		now := l.now()
		c := l.current(s, client, now)
		if c.refused >= l.limit {
			retryAfter = c.start + l.window - now
			s.mu.Unlock()
			return nil, retryAfter, false
		}
		if c.refused+c.inflight < l.limit {
			c.inflight++
			s.clients[client] = c
			s.mu.Unlock()
			return func(refused bool) bool { return l.release(client, refused) }, 0, true
		}
		if c.wake == nil {
			c.wake = make(chan struct{})
			s.clients[client] = c
		}
		wake := c.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			// The client went away (or the server is stopping) while
			// the logins ahead of it were still with WeChat; whatever
			// it is answered, nobody reads it.
			return nil, 0, false
		}
	}
}

// current returns client's entry with its window brought up to now (a
// zero entry if it has none), making room for it if the shard is full.
// s.mu must be held; the caller stores the entry back.
func (l *refusalLimiter) current(s *refusalShard, client clientKey, now time.Duration) refusalCount {
	c, found := s.clients[client]
	if !found {
		if len(s.clients) >= refusalShardCapacity {
			l.evict(s, now)
		}
		return c
	}
	if c.refused > 0 && now-c.start >= l.window {
		c.refused = 0
	}
	return c
}

// evict removes the least harmful of a few entries of a full shard: one
// whose window ended and that has no login in flight if there is one,
// else the one with the fewest refusals. Map iteration order is random,
// so the sample is too. Waiters of an evicted entry are woken: they look
// again and start a fresh entry.
func (l *refusalLimiter) evict(s *refusalShard, now time.Duration) {
	var (
		victim clientKey
		best   refusalCount
		found  bool
		seen   int
	)
	for k, c := range s.clients {
		stale := c.inflight == 0 && (c.refused == 0 || now-c.start >= l.window)
		if stale {
			victim, best, found = k, c, true
			break
		}
		if !found || c.refused+c.inflight < best.refused+best.inflight {
			victim, best, found = k, c, true
		}
		if seen++; seen >= refusalEvictionSample {
			break
		}
	}
	if found {
		if best.wake != nil {
			close(best.wake)
		}
		delete(s.clients, victim)
	}
}

// release ends a login of client that acquire let through.
func (l *refusalLimiter) release(client clientKey, refused bool) (reachedLimit bool) {
	s := l.shard(client)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := l.now()
	c := l.current(s, client, now)
	if c.inflight > 0 { // 0 if the entry was evicted meanwhile
		c.inflight--
	}
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
	if refused {
		if c.refused == 0 {
			c.start = now
		}
		c.refused++
	}
	if c.refused == 0 && c.inflight == 0 {
		delete(s.clients, client)
		return false
	}
	s.clients[client] = c
	return refused && c.refused == l.limit
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1: the
// Retry-After of a client over its limit.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
