package memorystore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// openMemory provisions a MemoryStore module as Caddy would and opens the
// store of appID; the returned cleanup is what Caddy calls when the config
// is unloaded. Warnings are recorded in logs when it is not nil.
func openMemory(t testing.TB, m *MemoryStore, appID string, logs **observer.ObservedLogs) (*memoryStore, func()) {
	t.Helper()
	s, cleanup := storetest.OpenModule(t, m, appID, func() {
		m.logger = zap.NewNop()
		if logs != nil {
			core, obs := observer.New(zap.InfoLevel)
			m.logger, *logs = zap.New(core), obs
		}
	})
	return s.(*memoryStore), cleanup
}

// wantCount checks Count exactly.
func wantCount(t testing.TB, s store.Store, want int) {
	t.Helper()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Fatalf("Count = %d, want %d", n, want)
	}
}

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
		s, _ := openMemory(t, &MemoryStore{}, appID, nil)
		return s
	}}.Run(t)
}

func TestMemoryStoreReloadKeepsSessions(t *testing.T) {
	app := storetest.AppID(t, "")
	old, cleanupOld := openMemory(t, &MemoryStore{}, app, nil)
	h := storetest.Hash("reload")
	storetest.MustCreate(t, old, h, store.User{OpenID: "o1", SessionKey: "k"}, time.Hour)

	// A reload provisions the new config before cleaning up the old one.
	cur, cleanupNew := openMemory(t, &MemoryStore{MaxSessions: 50}, app, nil)
	if cur != old {
		t.Fatal("the same app id got a different store across a reload")
	}
	cleanupOld()
	storetest.MustLookup(t, cur, h)
	if got := cur.maxSessions.Load(); got != 50 {
		t.Fatalf("max_sessions of the new config not applied: %d", got)
	}

	other, _ := openMemory(t, &MemoryStore{}, app+"-other", nil)
	storetest.WantNotFound(t, other, h)

	// After the last config is gone, a new one starts empty.
	cleanupNew()
	fresh, _ := openMemory(t, &MemoryStore{}, app, nil)
	if fresh == cur {
		t.Fatal("store outlived its last user")
	}
	storetest.WantNotFound(t, fresh, h)
	wantCount(t, fresh, 0)
}

func TestMemoryStoreEvictsOldest(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{MaxSessions: 10}, storetest.AppID(t, ""), nil)
	for i := range 25 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i), SessionKey: "k"}, time.Hour)
	}
	wantCount(t, s, 10)
	for i := range 15 {
		storetest.WantNotFound(t, s, storetest.SeqHash(i))
	}
	for i := 15; i < 25; i++ {
		storetest.MustLookup(t, s, storetest.SeqHash(i))
	}
	// Deleting makes room without evicting anyone.
	if err := s.DeleteSession(context.Background(), storetest.SeqHash(20)); err != nil {
		t.Fatal(err)
	}
	storetest.MustCreate(t, s, storetest.SeqHash(100), store.User{OpenID: "o100", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, s, storetest.SeqHash(15))
	wantCount(t, s, 10)
}

func TestMemoryStoreEvictsInBatches(t *testing.T) {
	const max = 1280
	s, _ := openMemory(t, &MemoryStore{MaxSessions: max}, storetest.AppID(t, ""), nil)
	u := store.User{OpenID: "o", SessionKey: "k"}
	for i := range 3 * max {
		// Expiries in creation order, and distinct even if the clock is
		// coarse.
		storetest.MustCreate(t, s, storetest.SeqHash(i), u, time.Hour+time.Duration(i)*time.Millisecond)
		if n := s.sessions.ItemCount(); n > max {
			t.Fatalf("%d sessions after login %d, max %d", n, i, max)
		}
	}
	n := int(s.sessions.ItemCount())
	if n < max-max/128-1 {
		t.Fatalf("evicted down to %d, more than a batch below %d", n, max)
	}
	// Exactly the newest n survive.
	for i := 3*max - n; i < 3*max; i++ {
		storetest.MustLookup(t, s, storetest.SeqHash(i))
	}
	storetest.WantNotFound(t, s, storetest.SeqHash(3*max-n-1))
}

func TestMemoryStoreSweep(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{}, storetest.AppID(t, ""), nil)
	for i := range 3000 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i%100), SessionKey: "k"}, 20*time.Millisecond)
	}
	keep := storetest.Hash("keep")
	storetest.MustCreate(t, s, keep, store.User{OpenID: "o-keep", SessionKey: "k"}, time.Hour)
	revoked := storetest.Hash("revoked")
	storetest.MustCreate(t, s, revoked, store.User{OpenID: "o-revoked", SessionKey: "k"}, time.Hour)
	time.Sleep(50 * time.Millisecond)
	if _, err := s.RevokeUser(context.Background(), "o-revoked"); err != nil {
		t.Fatal(err)
	}
	s.sessions.DeleteExpired() // what the janitor does every minute
	// The revoked session's entry stays until it is used, expires or is
	// evicted; only the live one counts.
	if n := s.sessions.ItemCount(); n != 2 {
		t.Fatalf("%d sessions left after the sweep, want 2", n)
	}
	wantCount(t, s, 1)
	s.mu.Lock()
	users := len(s.users)
	s.mu.Unlock()
	if users != 1 {
		t.Fatalf("%d user records left after the sweep, want 1", users)
	}
	storetest.MustLookup(t, s, keep)
	storetest.WantNotFound(t, s, revoked)
	if n := s.sessions.ItemCount(); n != 1 {
		t.Fatalf("a revoked session seen by Lookup was not dropped: %d left", n)
	}
	wantCount(t, s, 1)
}

func TestMemoryStoreSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WECHAT_SNAP_DIR", dir)
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Snapshot: "{env.WECHAT_SNAP_DIR}/sub/wechat.snap"} }
	file := filepath.Join(dir, "sub", "wechat.snap")

	s, stop := openMemory(t, cfg(), app, nil)
	ctx := context.Background()
	alice := store.User{OpenID: "o-alice", UnionID: "u-alice", SessionKey: "k-alice"}
	bob := store.User{OpenID: "o-bob", SessionKey: "k-bob"}
	ha1, ha2, hb, hgone, hshort := storetest.Hash("a1"), storetest.Hash("a2"), storetest.Hash("b"), storetest.Hash("gone"), storetest.Hash("short")
	exp := storetest.MustCreate(t, s, ha1, alice, time.Hour)
	storetest.MustCreate(t, s, ha2, alice, 2*time.Hour)
	storetest.MustCreate(t, s, hb, bob, time.Hour)
	storetest.MustCreate(t, s, hgone, bob, time.Hour)
	storetest.MustCreate(t, s, hshort, store.User{OpenID: "o-short", SessionKey: "k"}, 30*time.Millisecond)
	if err := s.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, hgone); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	stop() // the last Cleanup writes the snapshot

	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no snapshot written: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("snapshot mode %o, want 600: it holds session keys", mode)
	}
	data, _ := os.ReadFile(file)
	for _, secret := range []string{"token-a1", "token-b"} {
		if strings.Contains(string(data), secret) {
			t.Fatalf("snapshot contains a raw token %q", secret)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "sub", ".*tmp*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}

	var logs *observer.ObservedLogs
	s2, _ := openMemory(t, cfg(), app, &logs)
	if s2 == s {
		t.Fatal("expected a fresh store (a restart)")
	}
	wantCount(t, s2, 3)
	sess := storetest.MustLookup(t, s2, ha1)
	want := alice
	want.Phone, want.CountryCode = "13800001111", "86"
	if sess.User != want {
		t.Fatalf("restored user %+v, want %+v", sess.User, want)
	}
	if !sess.ExpiresAt.Equal(exp) {
		t.Fatalf("restored expiry %v, want %v", sess.ExpiresAt, exp)
	}
	if u := storetest.MustLookup(t, s2, hb).User; u != bob {
		t.Fatalf("restored bob %+v", u)
	}
	storetest.WantNotFound(t, s2, hgone)
	storetest.WantNotFound(t, s2, hshort)
	// Restored sessions still share their user record.
	if err := s2.BindPhone(ctx, bob.OpenID, "13900002222", "86"); err != nil {
		t.Fatal(err)
	}
	storetest.MustCreate(t, s2, storetest.Hash("a3"), store.User{OpenID: alice.OpenID, SessionKey: "k-new"}, time.Hour)
	if u := storetest.MustLookup(t, s2, ha2).User; u.SessionKey != "k-new" {
		t.Fatalf("restored token does not see the new session key: %+v", u)
	}
	if logs.FilterMessage("restored sessions from snapshot").Len() != 1 {
		t.Fatalf("restore not logged: %v", logs.All())
	}
}

func TestMemoryStoreSnapshotEvictionOrder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.snap")
	app := storetest.AppID(t, "")
	s, stop := openMemory(t, &MemoryStore{Snapshot: file}, app, nil)
	for i := range 20 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i), SessionKey: "k"}, time.Hour)
		time.Sleep(time.Millisecond)
	}
	stop()
	// Restarted with room for 5: the newest 5 are kept, and the oldest of
	// them is the next to go.
	s2, _ := openMemory(t, &MemoryStore{Snapshot: file, MaxSessions: 5}, app, nil)
	wantCount(t, s2, 5)
	for i := 15; i < 20; i++ {
		storetest.MustLookup(t, s2, storetest.SeqHash(i))
	}
	storetest.MustCreate(t, s2, storetest.SeqHash(100), store.User{OpenID: "o100", SessionKey: "k"}, time.Hour)
	storetest.WantNotFound(t, s2, storetest.SeqHash(15))
	storetest.MustLookup(t, s2, storetest.SeqHash(16))
}

func TestMemoryStoreBadSnapshotIgnored(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.snap")
	app := storetest.AppID(t, "")
	s, stop := openMemory(t, &MemoryStore{Snapshot: good}, app, nil)
	for i := range 10 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i), SessionKey: "k"}, time.Hour)
	}
	stop()
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// The good file loads: the cases below fail only for their defect.
	s, stop = openMemory(t, &MemoryStore{Snapshot: good}, app, nil)
	wantCount(t, s, 10)
	stop()

	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 0x40
	future := bytes.Replace(data, []byte(snapMagic+" 1 "), []byte(snapMagic+" 2 "), 1)

	cases := []struct {
		name, app, want string
		data            []byte
	}{
		{"corrupt", app, "checksum", flipped},
		{"truncated", app, "checksum", data[:len(data)*2/3]},
		{"truncated-header", app, "truncated", data[:len(snapMagic)+3]},
		{"foreign", app + "-other", "belongs to app", data},
		{"future-version", app, "version 2", future},
		{"not-a-snapshot", app, "not a wechat_auth session snapshot", []byte("hello world\n")},
		{"empty", app, "not a wechat_auth session snapshot", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.snap")
			if err := os.WriteFile(file, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs *observer.ObservedLogs
			s, _ := openMemory(t, &MemoryStore{Snapshot: file}, tc.app, &logs)
			wantCount(t, s, 0)
			warned := logs.FilterLevelExact(zap.WarnLevel).All()
			if len(warned) != 1 || !strings.Contains(fmt.Sprint(warned[0].ContextMap()["error"]), tc.want) {
				t.Fatalf("want one warning mentioning %q, got %v", tc.want, logs.All())
			}
			// Still usable.
			storetest.MustCreate(t, s, storetest.Hash("x"), store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
		})
	}
}

func TestMemoryStoreSnapshotClash(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shared.snap")
	openMemory(t, &MemoryStore{Snapshot: file}, storetest.AppID(t, "a"), nil)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	m := &MemoryStore{Snapshot: file}
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	m.logger = zap.NewNop()
	if _, err := m.Open(ctx, storetest.AppID(t, "b")); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("two apps on one snapshot file: %v", err)
	}
}

func TestMemoryStoreSnapshotUnwritable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: writing fails, and the
	// failure is reported, not fatal to anything else.
	file := filepath.Join(dir, "snap")
	if err := os.Mkdir(file, 0o700); err != nil {
		t.Fatal(err)
	}
	var logs *observer.ObservedLogs
	s, stop := openMemory(t, &MemoryStore{Snapshot: file}, storetest.AppID(t, ""), &logs)
	storetest.MustCreate(t, s, storetest.Hash("x"), store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	if err := s.writeSnapshot(); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) != 0 {
		t.Fatalf("temporary file left: %v", m)
	}
	// Once the path is usable again, the final snapshot is written.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryStoreGoroutinesReleased(t *testing.T) {
	runtime.GC()
	base := runtime.NumGoroutine()
	file := filepath.Join(t.TempDir(), "s.snap")
	for i := range 3 {
		s, cleanup := openMemory(t, &MemoryStore{Snapshot: file}, storetest.AppID(t, ""), nil)
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
		if err := s.PutLoginResult(context.Background(), "c", []byte("r"), time.Minute); err != nil {
			t.Fatal(err)
		}
		cleanup()
	}
	storetest.Eventually(t, 5*time.Second, "goroutines back to "+fmt.Sprint(base), func() bool {
		return runtime.NumGoroutine() <= base
	})
}

func TestMemoryLookupAllocs(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{}, storetest.AppID(t, ""), nil)
	h := storetest.Hash("hot")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", UnionID: "u", SessionKey: "k", Phone: "1", CountryCode: "86"}, time.Hour)
	var st store.Store = s // through the interface, as the handler calls it
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := st.Lookup(ctx, h); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Lookup allocates %v times per call", allocs)
	}
	miss := storetest.Hash("miss")
	allocs = testing.AllocsPerRun(1000, func() { st.Lookup(ctx, miss) })
	if allocs != 0 {
		t.Fatalf("a failed Lookup allocates %v times per call", allocs)
	}
}

func TestMemoryStoreCaddyfile(t *testing.T) {
	var m MemoryStore
	d := caddyfile.NewTestDispenser(`memory {
		max_sessions 5000
		snapshot {env.HOME}/wechat.snap
	}`)
	if err := m.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if m.MaxSessions != 5000 || m.Snapshot != "{env.HOME}/wechat.snap" {
		t.Fatalf("parsed %+v", m)
	}
	js, _ := json.Marshal(&m)
	if string(js) != `{"max_sessions":5000,"snapshot":"{env.HOME}/wechat.snap"}` {
		t.Fatalf("JSON %s", js)
	}
	var empty MemoryStore
	if err := empty.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`memory`)); err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(&empty); string(js) != `{}` {
		t.Fatalf("defaults JSON %s", js)
	}

	for input, want := range map[string]string{
		"memory {\n max_sessions lots\n}":                 "max_sessions",
		"memory {\n max_sessions 0\n}":                    "max_sessions",
		"memory {\n max_sessions\n}":                      "needs one argument",
		"memory {\n snapshot\n}":                          "needs one argument",
		"memory {\n snapshot a b\n}":                      "takes one argument",
		"memory {\n max_session 5\n}":                     "max_session",
		"memory extra":                                    "no arguments",
		"memory {\n max_sessions 5 6\n}":                  "takes one argument",
		"memory {\n max_sessions -1\n}":                   "max_sessions",
		"memory {\n bogus\n}":                             "bogus",
		"memory {\n snapshot /a\n bogus 1\n}":             "bogus",
		"memory {\n max_sessions 99999999999999999999\n}": "max_sessions",
	} {
		var m MemoryStore
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one mentioning %q", input, err, want)
		}
	}
}

func TestMemoryStoreModule(t *testing.T) {
	mi, err := caddy.GetModule("wechat_auth.stores.memory")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mi.New().(store.Module); !ok {
		t.Fatal("not a store.Module")
	}
	if err := (&MemoryStore{MaxSessions: -1}).Validate(); err == nil {
		t.Fatal("negative max_sessions accepted")
	}
	if _, err := (&MemoryStore{}).Open(caddy.Context{Context: context.Background()}, ""); err == nil {
		t.Fatal("empty app id accepted")
	}
}

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

// fillMemory creates n sessions of n distinct users with realistic field
// sizes: a 28-character openid and a 24-character session key.
func fillMemory(b testing.TB, s *memoryStore, n int) {
	ctx := context.Background()
	for i := range n {
		u := store.User{OpenID: fmt.Sprintf("oAbCdEfGhIjKlMnOpQr%09d", i), SessionKey: fmt.Sprintf("c2Vzc2lvbktleQ%08d==", i)}
		if _, err := s.CreateSession(ctx, storetest.SeqHash(i), u, time.Hour, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryBytesPerSession reports the heap held per live session
// at 1M sessions of distinct users (eviction queue and user records
// included).
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

func TestPackedUserRoundTrip(t *testing.T) {
	for _, u := range []store.User{
		{OpenID: "o-only"},
		{OpenID: "oAbC", SessionKey: "c2Vzc2lvbmtleTFzZXNzaQ=="},
		{OpenID: "oAbC", SessionKey: "k", UnionID: "u", Phone: "13800001111", CountryCode: "86"},
		{OpenID: "oAbC", Phone: "13800001111"},
		{OpenID: "é", CountryCode: "1"},
	} {
		p, err := packUser(u)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.user(); got != u {
			t.Errorf("packUser(%+v).user() = %+v", u, got)
		}
		if p.openID() != u.OpenID {
			t.Errorf("openID() = %q, want %q", p.openID(), u.OpenID)
		}
	}
	if _, err := packUser(store.User{OpenID: "o", SessionKey: strings.Repeat("k", maxPackedUser)}); err == nil {
		t.Fatal("an oversized record was packed")
	}
}
