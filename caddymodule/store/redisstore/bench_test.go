package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// benchUser is a user as WeChat gives them: 28-character openid and
// unionid, a base64 session key, a bound phone.
func benchUser(i int) store.User {
	return store.User{
		OpenID:      fmt.Sprintf("oAbCdEfGhIjKlMnOpQr%09d", i),
		UnionID:     fmt.Sprintf("oUnIoNaBcDeFgHiJkLm%09d", i),
		SessionKey:  "c2Vzc2lvbktleTEyMzQ1Ng==",
		Phone:       "13800001111",
		CountryCode: "86",
	}
}

// BenchmarkRedisLookup measures a look-up with the local cache on (a hit)
// and off (one GET), on each deployment. With the cache off it also
// times, in the same loop, a raw GET of the same session copy through
// the same go-redis client: "vs-GET" is the look-up's time over the
// GET's (the target is at most 1.5), both measured in alternation so
// that a noisy machine slows both alike.
func BenchmarkRedisLookup(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) {
			d := startDeployment(b, mode, nil)
			for _, cache := range []time.Duration{DefaultCacheTTL, 0} {
				name := "cache=on"
				if cache == 0 {
					name = "cache=off"
				}
				b.Run(name, func(b *testing.B) {
					s := d.open(b, fmt.Sprintf("wx_bench_%s_%s", mode, name), withCache(cache))
					if cache > 0 {
						waitLive(b, s)
					}
					ctx := context.Background()
					hs := make([]store.TokenHash, 1000)
					for i := range hs {
						hs[i] = storetest.SeqHash(i)
						if _, err := s.CreateSession(ctx, hs[i], benchUser(i), time.Hour, 0); err != nil {
							b.Fatal(err)
						}
						if _, err := s.Lookup(ctx, hs[i]); err != nil {
							b.Fatal(err)
						}
					}
					if cache > 0 {
						b.ReportAllocs()
						b.ResetTimer()
						for i := 0; b.Loop(); i++ {
							if _, err := s.Lookup(ctx, hs[i%len(hs)]); err != nil {
								b.Fatal(err)
							}
						}
						return
					}
					// The same client (pool, options, connections), so
					// that the difference is the store's own work.
					raw := s.client
					keys := make([]string, len(hs))
					for i, h := range hs {
						keys[i] = s.sessionKey(hexOf(h))
						if _, err := raw.Get(ctx, keys[i]).Result(); err != nil {
							b.Fatal(err)
						}
					}
					var inLookup, inGet time.Duration
					b.ResetTimer()
					for i := 0; b.Loop(); i++ {
						t0 := time.Now()
						if _, err := s.Lookup(ctx, hs[i%len(hs)]); err != nil {
							b.Fatal(err)
						}
						t1 := time.Now()
						if _, err := raw.Get(ctx, keys[i%len(hs)]).Result(); err != nil {
							b.Fatal(err)
						}
						inLookup += t1.Sub(t0)
						inGet += time.Since(t1)
					}
					n := float64(b.N)
					b.ReportMetric(float64(inLookup.Nanoseconds())/n, "ns/lookup")
					b.ReportMetric(float64(inGet.Nanoseconds())/n, "ns/GET")
					b.ReportMetric(float64(inLookup)/float64(inGet), "vs-GET")
				})
			}
		})
	}
}

// BenchmarkRedisCacheFull: a cache of 10,000 sessions under look-ups of
// a working set of half, twice and four times that, spread evenly (the
// worst case for any cache), from four goroutines. It reports the hit
// rate, the GETs Redis receives per second, and how steady the share of
// look-ups that reach Redis is over the run (per 100ms window, the
// lowest and the highest over the mean; a closed-loop benchmark on a
// shared machine varies in throughput, so the share, not the rate, is
// what a fixed request rate would turn into Redis calls per second).
//
// policy=clock is the store's cache. policy=reset-when-full is the cache
// it replaced, rebuilt here for comparison: emptied whenever it is full,
// it sends every active user to Redis at once, and the share swings.
func BenchmarkRedisCacheFull(b *testing.B) {
	d := startDeployment(b, ModeStandalone, nil)
	const size = 10_000
	for _, policy := range []string{"clock", "reset-when-full"} {
		for _, ws := range []int{size / 2, 2 * size, 4 * size} {
			b.Run(fmt.Sprintf("policy=%s/working-set=%.1fx", policy, float64(ws)/size), func(b *testing.B) {
				s := d.open(b, fmt.Sprintf("wx_bench_full_%s_%d", policy, ws), func(m *Config) {
					m.CacheTTL = durationPtr(time.Minute)
					m.CacheSize = size
				})
				waitLive(b, s)
				lookup := s.Lookup
				if policy == "reset-when-full" {
					lookup = (&resetCache{s: s, max: size, m: map[store.TokenHash]store.Session{}}).lookup
				}
				ctx := context.Background()
				hs := make([]store.TokenHash, ws)
				for i := range hs {
					hs[i] = storetest.SeqHash(i)
					if _, err := s.CreateSession(ctx, hs[i], benchUser(i), time.Hour, 0); err != nil {
						b.Fatal(err)
					}
				}
				for range 3 * ws { // to the steady state
					if _, err := lookup(ctx, hs[rand.IntN(len(hs))]); err != nil {
						b.Fatal(err)
					}
				}
				calls := countCommands(b, s)
				var lookups atomic.Int64
				var shares []float64
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					lastCalls, lastLookups := calls.commands.Load(), lookups.Load()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							c, l := calls.commands.Load(), lookups.Load()
							if l > lastLookups {
								shares = append(shares, float64(c-lastCalls)/float64(l-lastLookups))
							}
							lastCalls, lastLookups = c, l
						}
					}
				}()
				start := time.Now()
				b.ResetTimer()
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
					for pb.Next() {
						if _, err := lookup(ctx, hs[r.IntN(len(hs))]); err != nil {
							b.Error(err)
							return
						}
						lookups.Add(1)
					}
				})
				b.StopTimer()
				elapsed := time.Since(start)
				close(stop)
				wg.Wait()
				gets := float64(calls.commands.Load())
				b.ReportMetric(100*(1-gets/float64(b.N)), "hit-%")
				b.ReportMetric(gets/elapsed.Seconds(), "GETs/s")
				if len(shares) >= 3 && gets > 0.01*float64(b.N) {
					sort.Float64s(shares)
					mean := 0.0
					for _, w := range shares {
						mean += w
					}
					mean /= float64(len(shares))
					b.ReportMetric(shares[0]/mean, "min-share/mean")
					b.ReportMetric(shares[len(shares)-1]/mean, "max-share/mean")
				}
				if n := s.cache.len(); n > size {
					b.Fatalf("cache holds %d entries, bound %d", n, size)
				}
			})
		}
	}
}

// resetCache is the look-up cache this store had before: a map emptied
// whenever it is full (for BenchmarkRedisCacheFull's comparison only).
type resetCache struct {
	s   *sharedStore
	max int
	mu  sync.RWMutex
	m   map[store.TokenHash]store.Session
}

func (c *resetCache) lookup(ctx context.Context, th store.TokenHash) (store.Session, error) {
	c.mu.RLock()
	sess, ok := c.m[th]
	c.mu.RUnlock()
	if ok {
		return sess, nil
	}
	sess, err := c.s.read(ctx, th)
	if err != nil {
		return sess, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.m = make(map[store.TokenHash]store.Session)
	}
	c.m[th] = sess
	c.mu.Unlock()
	return sess, nil
}
