package memorystore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// stormUser is a login of the storm: a new user whose openid, like
// WeChat's, sorts nowhere near the last one (each login lands on its own
// page of the file, not at the end).
func stormUser(i int) store.User {
	h := storetest.SeqHash(-i)
	return store.User{OpenID: fmt.Sprintf("o%x", h[:14])[:28], SessionKey: fmt.Sprintf("c2Vzc2lvbktleQ%08d==", i)}
}

// BenchmarkLoginStorm is a login storm at the concurrency of
// bench/storm.sh: 32 callers, each login a new user, against a store of
// $STORM_SESSIONS sessions (default 100k) in memory only and one whose
// every login is on disk before CreateSession returns, in $STORM_ROUNDS
// interleaved rounds (default 5) of half a second:
//
//	go test -run '^$' -bench LoginStorm -benchtime 1x ./caddymodule/store/memorystore/
//
// Before each login a caller does $STORM_WORK µs of CPU work (default
// 250, timed once at the start: what the HTTP request and the WeChat
// round trip cost a real Caddy), so that the commits compete with other
// work for the cores, as they do in Caddy. It reports the median over
// rounds of persisted/in-memory logins/s, and for the persisted store the
// logins per journal sync and the bbolt pages written per login (by the
// folds, the last one after the rounds), and the process's peak heap in
// use during the rounds (sampled every 20 ms: what the folds' write
// transactions add, in the open).
func BenchmarkLoginStorm(b *testing.B) {
	const callers = 32
	rounds, work, sessions := 5, 250*time.Microsecond, 100_000
	if v, err := strconv.Atoi(os.Getenv("STORM_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	if v, err := strconv.Atoi(os.Getenv("STORM_SESSIONS")); err == nil && v > 0 {
		sessions = v
	}
	if v, err := time.ParseDuration(os.Getenv("STORM_WORK") + "us"); err == nil {
		work = v
	}
	spin := spinFor(work)
	round := 500 * time.Millisecond
	mem, _ := openMemory(b, &MemoryStore{}, "wx_bench_storm_mem", nil)
	disk, _ := openMemory(b, &MemoryStore{}, "wx_bench_storm_disk", nil)
	for _, s := range []*sharedStore{mem, disk} {
		fillMemory(b, s, sessions)
	}
	persistAll(b, disk, filepath.Join(b.TempDir(), "s.db"))
	db := disk.disk.f.db
	var next atomic.Int64
	next.Store(1 << 30)
	ctx := context.Background()
	storm := func(s *sharedStore) float64 {
		var wg sync.WaitGroup
		var n atomic.Int64
		t0 := time.Now()
		end := t0.Add(round)
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					spin()
					i := int(next.Add(1))
					if _, err := s.CreateSession(ctx, storetest.SeqHash(i), stormUser(i), time.Hour, 0); err != nil {
						b.Error(err)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(n.Load()) / time.Since(t0).Seconds()
	}
	var ratios, rates []float64
	var peak atomic.Uint64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak.Store(max(peak.Load(), ms.HeapInuse))
		}
	}()
	j := disk.disk.f.j
	pages0, syncs0, calls0 := writes(db), j.syncs.Load(), j.records.Load()
	for r := range rounds {
		var m, d float64
		if r%2 == 0 {
			m, d = storm(mem), storm(disk)
		} else {
			d, m = storm(disk), storm(mem)
		}
		ratios, rates = append(ratios, d/m), append(rates, d)
		b.Logf("round %d: persisted %.0f / in memory %.0f logins/s = %.3f", r+1, d, m, d/m)
	}
	close(stopSampling)
	<-sampled
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	slices.Sort(ratios)
	slices.Sort(rates)
	// What is still in the journal is folded now, so that pages/login
	// counts every page the rounds' logins cost (the folds during the
	// rounds competed with them for the cores; this last one does not).
	disk.disk.fold(true)
	calls := j.records.Load() - calls0
	b.ReportMetric(ratios[len(ratios)/2], "persist/memory")
	b.ReportMetric(rates[len(rates)/2], "persisted-logins/s")
	b.ReportMetric(float64(calls)/float64(j.syncs.Load()-syncs0), "logins/sync")
	b.ReportMetric(float64(writes(db)-pages0)/float64(calls), "pages/login")
}

// spinFor returns a function that does about d of CPU work (SHA-256 of a
// kilobyte, as many times as d takes here, timed once).
func spinFor(d time.Duration) func() {
	var buf [1024]byte
	const probe = 2000
	t0 := time.Now()
	for range probe {
		buf[0] = sha256.Sum256(buf[:])[0]
	}
	n := int(float64(probe) * float64(d) / float64(time.Since(t0)))
	return func() {
		var b [1024]byte
		for range n {
			b[0] = sha256.Sum256(b[:])[0]
		}
	}
}

// writes is the number of pages db has written.
func writes(db *bolt.DB) int64 {
	st := db.Stats()
	return st.TxStats.GetWrite()
}
