package memorystore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// BenchmarkMemoryLookup measures the pass-through hot path at several
// store sizes.
func BenchmarkMemoryLookup(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s, _ := openMemory(b, &MemoryStore{}, fmt.Sprint("wx_bench_lookup_", n), nil)
			fillMemory(b, s, n)
			ctx := context.Background()
			hs := make([]store.TokenHash, 4096)
			for i := range hs {
				hs[i] = storetest.SeqHash(i * (n / len(hs)))
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.Lookup(ctx, hs[i%len(hs)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// benchUser is the i-th user of fillMemory, with realistic field sizes: a
// 28-character openid and a 24-character session key.
func benchUser(i int) store.User {
	return store.User{OpenID: fmt.Sprintf("oAbCdEfGhIjKlMnOpQr%09d", i), SessionKey: fmt.Sprintf("c2Vzc2lvbktleQ%08d==", i)}
}

// fillMemory creates n sessions of n distinct users, in memory only (the
// store must have no persist file yet: see persistAll).
func fillMemory(b testing.TB, s *sharedStore, n int) {
	ctx := context.Background()
	for i := range n {
		if _, err := s.CreateSession(ctx, storetest.SeqHash(i), benchUser(i), time.Hour, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// persistAll gives s the persist file path, as a reload that adds persist
// does: every session is written to it. It returns how long that took.
func persistAll(b testing.TB, s *sharedStore, path string) time.Duration {
	t0 := time.Now()
	s.cfgMu.Lock()
	err := s.usePersist(path)
	s.cfgMu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	return time.Since(t0)
}

// BenchmarkMemoryBytesPerSession reports the heap held per live session
// at 1M sessions of distinct users (user records included).
func BenchmarkMemoryBytesPerSession(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, cleanup := openMemory(b, &MemoryStore{}, "wx_bench_bytes", nil)
		fillMemory(b, s, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/session")
		runtime.KeepAlive(s)
		cleanup()
	}
}

// BenchmarkHousekeepingProbe builds 1M persisted sessions and measures,
// for each housekeeping step, the p99.9 and the longest Lookup during the
// step beside an idle interval of the same length right after it (see
// probe_test.go), over three rounds:
//
//	go test -run '^$' -bench HousekeepingProbe -benchtime 1x -timeout 30m ./caddymodule/store/memorystore/
//
// The table is logged, and written to $PROBE_OUT when set.
func BenchmarkHousekeepingProbe(b *testing.B) {
	const n = 1_000_000
	file := filepath.Join(b.TempDir(), "s.db")
	s, _ := openMemory(b, &MemoryStore{}, "wx_probe_new", nil)
	fillMemory(b, s, n)
	memoryOnly := os.Getenv("PROBE_MEMORY_ONLY") != "" // (no file: shows what the disk writes cost)
	if !memoryOnly {
		b.Logf("writing 1M sessions to a new persist file took %v", persistAll(b, s, file))
	}
	hs := probeHashes(n)
	ctx := context.Background()
	var next atomic.Int64
	next.Store(n)

	var gone removals
	logins := func(each int) func() {
		return func() {
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				base := int(next.Add(int64(each))) - each
				go func() {
					defer wg.Done()
					for i := range each {
						s.CreateSession(ctx, storetest.SeqHash(base+i), benchUser(base+i), time.Hour, 0)
					}
				}()
			}
			wg.Wait()
		}
	}
	steps := []probeStep{
		spinStep,
		{name: "Count (every metrics scrape)", repeat: true, run: func() { s.Count(ctx) }},
		{name: "expiry sweep, at the housekeeper's pace (8 ticks of one shard)", run: func() {
			for i := range 8 {
				s.shards[i].DeleteExpired()
				time.Sleep(sweepRound / numShards)
			}
		}},
		{name: "session-limit trim (8k sessions) and their removal from the file", run: func() {
			s.maxSessions.Store(s.size.Load() - 1)
			s.settle()
			s.maxSessions.Store(DefaultMaxSessions * 10)
		}},
		{name: "100k expired sessions and their users leave the file (the background flush)", run: func() {
			s.disk.qmu.Lock()
			s.disk.qSessions, s.disk.qUsers = gone.sessions, gone.users
			s.disk.qmu.Unlock()
			// The housekeeper writes them at its next tick.
			for queued(s) > 0 {
				time.Sleep(time.Millisecond)
			}
			s.disk.flushMu.Lock()
			s.disk.flushMu.Unlock()
		}},
		{name: "logins, 4 concurrent, each written before it returns", repeat: true, run: logins(25)},
		{name: "Go GC (forced every 2 min when idle)", run: func() { runtime.GC() }},
	}
	b.ResetTimer()
	var rows []probeRow
	if memoryOnly {
		steps = slices.DeleteFunc(steps, func(st probeStep) bool { return strings.Contains(st.name, "leave the file") })
	}
	for range probeRounds() {
		if !memoryOnly {
			gone = leftMemory(b, s, int(next.Add(100_000))-100_000, 100_000)
		}
		rows = mergeRows(rows, runProbe(b, s, hs, steps, 1))
	}
	probeTable(b, "after (256 go-cache shards, persist file)", rows)
	if fi, err := os.Stat(file); err == nil {
		b.Logf("persist file: %d MB", fi.Size()>>20)
	}
}

// queued is the number of removals waiting to be written.
func queued(s *sharedStore) int {
	s.disk.qmu.Lock()
	defer s.disk.qmu.Unlock()
	return len(s.disk.qSessions) + len(s.disk.qUsers) + len(s.disk.qPrevKeys)
}

// removals are the writes that m sessions leaving memory queue.
type removals struct{ sessions, users []string }

// leftMemory makes m sessions of m users that are in the persist file
// but have left memory, as the sweep leaves expired ones, and returns the
// removals that their leaving queues (not queued yet).
func leftMemory(b *testing.B, s *sharedStore, base, m int) removals {
	onDisk(b, s, base, m)
	s.disk.on.Store(false) // (nothing queued now: the step queues it)
	var r removals
	for i := base; i < base+m; i++ {
		th := storetest.SeqHash(i)
		s.shard(&th).Delete(string(th[:]))
		id := benchUser(i).OpenID
		r.sessions = append(r.sessions, string(sessionKey(id, th[:])))
		r.users = append(r.users, id)
	}
	s.disk.on.Store(true)
	return r
}

// onDisk makes m sessions, in memory and in the persist file, in bulk.
func onDisk(b *testing.B, s *sharedStore, base, m int) {
	f := s.disk.swap(nil)
	fillRange(b, s, base, m)
	s.disk.swap(f)
	for start := 0; start < m; start += 20000 {
		err := f.db.Update(func(tx *bolt.Tx) error {
			w := newDiskWriter(s, tx)
			for i := base + start; i < base+min(m, start+20000); i++ {
				th := storetest.SeqHash(i)
				if err := errors.Join(w.user(benchUser(i).OpenID), w.session(benchUser(i).OpenID, th)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// fillRange creates the sessions base..base+m-1 in memory (the store must
// not persist while it does).
func fillRange(b testing.TB, s *sharedStore, base, m int) {
	ctx := context.Background()
	for i := base; i < base+m; i++ {
		if _, err := s.CreateSession(ctx, storetest.SeqHash(i), benchUser(i), time.Hour, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func mergeRows(acc, rows []probeRow) []probeRow {
	if acc == nil {
		return rows
	}
	for i := range rows {
		acc[i].runs += rows[i].runs
		acc[i].took += rows[i].took
		acc[i].rounds = append(acc[i].rounds, rows[i].rounds...)
		acc[i].roundLines = append(acc[i].roundLines, rows[i].roundLines...)
	}
	return acc
}

// BenchmarkMemoryRestart measures a start with 1M persisted sessions:
// opening the store, which loads the file, until it answers.
func BenchmarkMemoryRestart(b *testing.B) {
	const n = 1_000_000
	file := filepath.Join(b.TempDir(), "s.db")
	app := "wx_bench_restart"
	s, stop := openMemory(b, &MemoryStore{}, app, nil)
	fillMemory(b, s, n)
	persistAll(b, s, file)
	stop()
	s = nil
	if fi, err := os.Stat(file); err == nil {
		b.Logf("persist file with %d sessions: %d MB", n, fi.Size()>>20)
	}
	var wall, cpu time.Duration
	runs := 0
	for b.Loop() {
		runtime.GC()
		t0, c0 := time.Now(), cpuTime()
		s2, stop2 := openMemory(b, &MemoryStore{Persist: file}, app, nil)
		wall += time.Since(t0)
		cpu += cpuTime() - c0
		runs++
		storetest.MustLookup(b, s2, storetest.SeqHash(n/2))
		stop2()
	}
	b.ReportMetric(wall.Seconds()/float64(runs), "s/start")
	b.ReportMetric(cpu.Seconds()/float64(runs), "cpu-s/start")
}

// BenchmarkMemoryLogin measures CreateSession without and with a persist
// file, one caller at a time (ns/op is a login's latency) and 16 at once
// (bbolt's Batch then shares a commit between them: ns/op is the time per
// login of the 16 together), on a store of 100k sessions.
func BenchmarkMemoryLogin(b *testing.B) {
	for _, persist := range []bool{false, true} {
		for _, par := range []int{1, 16} {
			b.Run(fmt.Sprintf("persist=%v/callers=%d", persist, par), func(b *testing.B) {
				app := storetest.AppID(b, "")
				s, _ := openMemory(b, &MemoryStore{}, app, nil)
				fillMemory(b, s, 100_000)
				if persist {
					persistAll(b, s, filepath.Join(b.TempDir(), "s.db"))
				}
				var next atomic.Int64
				next.Store(1 << 30)
				ctx := context.Background()
				b.ResetTimer()
				if par == 1 {
					for b.Loop() {
						i := int(next.Add(1))
						if _, err := s.CreateSession(ctx, storetest.SeqHash(i), benchUser(i%200_000), time.Hour, 0); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := int(next.Add(1))
						if _, err := s.CreateSession(ctx, storetest.SeqHash(i), benchUser(i%200_000), time.Hour, 0); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkPersistChurn keeps 30k sessions alive while replacing them
// many times over (logouts and new logins), and reports the file's size
// after each replacement of all of them: bbolt reuses freed pages.
func BenchmarkPersistChurn(b *testing.B) {
	const live, rounds = 30_000, 8
	file := filepath.Join(b.TempDir(), "s.db")
	s, _ := openMemory(b, &MemoryStore{}, "wx_bench_churn", nil)
	fillMemory(b, s, live)
	persistAll(b, s, file)
	ctx := context.Background()
	size := func() float64 {
		fi, _ := os.Stat(file)
		return float64(fi.Size()) / (1 << 20)
	}
	first := size()
	var last float64
	for range b.N {
		for r := 1; r <= rounds; r++ {
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < live; i += 16 {
						old, fresh := (r-1)*live+i, r*live+i
						s.DeleteSession(ctx, storetest.SeqHash(old))
						s.CreateSession(ctx, storetest.SeqHash(fresh), benchUser(fresh), time.Hour, 0)
					}
				}()
			}
			wg.Wait()
			s.settle()
			last = size()
			b.Logf("round %d: %.1f MB", r, last)
		}
	}
	b.ReportMetric(first, "MB-at-start")
	b.ReportMetric(last, "MB-after-churn")
	var keys int
	s.disk.f.db.View(func(tx *bolt.Tx) error { keys = tx.Bucket(bucketSessions).Stats().KeyN; return nil })
	b.ReportMetric(float64(keys), "sessions-in-file")
}

// BenchmarkMemoryLoad measures reading a persist file of 1M sessions into
// a new store alone, without opening or identifying the file, several
// times: on a shared machine, the fastest run says the most.
func BenchmarkMemoryLoad(b *testing.B) {
	const n = 1_000_000
	file := filepath.Join(b.TempDir(), "s.db")
	s, stop := openMemory(b, &MemoryStore{}, "wx_bench_load", nil)
	fillMemory(b, s, n)
	persistAll(b, s, file)
	stop()
	s = nil
	db, err := openBolt(file, true)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	best, bestCPU := time.Duration(1<<62), time.Duration(1<<62)
	for b.Loop() {
		runtime.GC()
		s := newSharedStore("wx_bench_load", DefaultMaxSessions, nil)
		t0, c0 := time.Now(), cpuTime()
		if m, err := s.load(db); err != nil || m != n {
			b.Fatal(m, err)
		}
		best, bestCPU = min(best, time.Since(t0)), min(bestCPU, cpuTime()-c0)
	}
	b.ReportMetric(best.Seconds(), "best-s")
	b.ReportMetric(bestCPU.Seconds(), "best-cpu-s")
}
