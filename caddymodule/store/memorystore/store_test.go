package memorystore

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
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
// is unloaded. Log lines are recorded in logs when it is not nil.
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

// settle runs the store's housekeeping now (storetest.Suite.Settle).
func settle(_ *testing.T, s store.Store) { s.(*memoryStore).settle() }

// wantCount checks Count exactly, after a round of housekeeping.
func wantCount(t testing.TB, s *memoryStore, want int) {
	t.Helper()
	s.settle()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Fatalf("Count = %d, want %d", n, want)
	}
}

// entries is the number of cache entries, live, expired or revoked.
func (s *memoryStore) entries() int {
	n := 0
	for _, sh := range s.shards {
		n += sh.ItemCount()
	}
	return n
}

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
		s, _ := openMemory(t, &MemoryStore{}, appID, nil)
		return s
	}, Settle: settle}.Run(t)
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

// provisionIn provisions m in the config whose context is ctx, as Caddy
// does for every site of one config.
func provisionIn(t *testing.T, ctx caddy.Context, m *MemoryStore) {
	t.Helper()
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	m.logger = zap.NewNop()
}

func TestMemoryStoreSitesOfOneConfigShareOrConflict(t *testing.T) {
	app := storetest.AppID(t, "")
	dir := t.TempDir()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	// Two sites of one app with the same settings share one store.
	a, b := &MemoryStore{Persist: filepath.Join(dir, "a.db")}, &MemoryStore{Persist: filepath.Join(dir, "a.db")}
	provisionIn(t, ctx, a)
	provisionIn(t, ctx, b)
	sa, err := a.Open(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	sb, err := b.Open(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Cleanup()
	if sa != sb {
		t.Fatal("two sites of one app got two stores")
	}

	// A third site of the same config that disagrees is a config error,
	// whichever setting differs.
	for _, m := range []*MemoryStore{
		{Persist: filepath.Join(dir, "other.db")},
		{},
		{Persist: filepath.Join(dir, "a.db"), MaxSessions: 10},
	} {
		provisionIn(t, ctx, m)
		if _, err := m.Open(ctx, app); err == nil || !strings.Contains(err.Error(), "differently") {
			t.Fatalf("%+v: got %v, want a conflict", m, err)
		}
	}
	// Refusing them left the store as it was.
	if got := sa.(*memoryStore).disk.path(); got != filepath.Join(dir, "a.db") {
		t.Fatalf("persist file now %q", got)
	}

	// Another config (a reload) may change the settings.
	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel2()
	c := &MemoryStore{MaxSessions: 10}
	provisionIn(t, ctx2, c)
	sc, err := c.Open(ctx2, app)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cleanup()
	if sc != sa || sa.(*memoryStore).maxSessions.Load() != 10 || sa.(*memoryStore).disk.path() != "" {
		t.Fatal("the reload's settings were not applied")
	}
}

func TestMemoryStoreEvictsOldest(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{MaxSessions: 10}, storetest.AppID(t, ""), nil)
	for i := range 25 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i), SessionKey: "k"}, time.Hour+time.Duration(i)*time.Millisecond)
		s.settle()
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
	storetest.MustCreate(t, s, storetest.SeqHash(100), store.User{OpenID: "o100", SessionKey: "k"}, 2*time.Hour)
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
		if i%100 == 0 {
			s.settle()
		}
	}
	s.settle()
	n := s.entries()
	if n > max || n < max-max/128-1 {
		t.Fatalf("evicted down to %d, want within a batch below %d", n, max)
	}
	// Exactly the newest n survive.
	for i := 3*max - n; i < 3*max; i++ {
		storetest.MustLookup(t, s, storetest.SeqHash(i))
	}
	storetest.WantNotFound(t, s, storetest.SeqHash(3*max-n-1))
}

// Above trimExact the cut-off comes from a sample of the shards: the
// count lands near a batch below the limit, and the sessions kept are the
// newest.
func TestMemoryStoreEvictsBySample(t *testing.T) {
	const n, max = 3 * trimExact / 2, trimExact + trimExact/4
	s, _ := openMemory(t, &MemoryStore{MaxSessions: max}, storetest.AppID(t, ""), nil)
	ctx := context.Background()
	base := time.Now()
	for i := range n {
		// Expiries in creation order (go-cache takes the ttl from now).
		ttl := time.Hour + time.Duration(i)*time.Millisecond - time.Since(base)
		if _, err := s.CreateSession(ctx, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i%1000), SessionKey: "k"}, ttl, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.settle()
	got := s.entries()
	if got > max || got < max-3*max/128 {
		t.Fatalf("%d sessions kept, want a little under %d (a batch is %d)", got, max, max/128)
	}
	for i := n - got; i < n; i++ {
		storetest.MustLookup(t, s, storetest.SeqHash(i))
	}
}

// The login that crosses max_sessions does not pay for the scan that
// enforces it: the housekeeper does. Here the housekeeper is held inside
// a sweep; the login still returns at once, over the limit, and the limit
// is enforced once the housekeeper is free.
func TestMemoryStoreTrimIsNotTheLoginsWork(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{MaxSessions: 10}, storetest.AppID(t, ""), nil)
	for i := range 10 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i), SessionKey: "k"}, time.Hour+time.Duration(i)*time.Millisecond)
	}
	s.settle()

	// An entry that has expired, in a shard whose removal hook blocks.
	sh := s.shards[7]
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // (a failure must not leave the housekeeper stuck)
	sh.OnEvicted(func(k string, v any) {
		close(entered)
		<-release
		s.sessionRemoved(k, v)
	})
	rec := &memUser{}
	rec.u.Store(&packedUser{buf: "o-stuck", lens: [4]uint8{7}})
	rec.n = 1
	sh.Set(string(make([]byte, 32)), rec, time.Nanosecond)
	s.size.Add(1)
	settled := make(chan struct{})
	go func() { s.settle(); close(settled) }()
	<-entered // the housekeeper is stuck in the sweep

	done := make(chan struct{})
	go func() {
		defer close(done)
		storetest.MustCreate(t, s, storetest.SeqHash(100), store.User{OpenID: "o100", SessionKey: "k"}, 2*time.Hour)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the login crossing max_sessions waited for housekeeping")
	}
	// (The stuck entry has left its map already; its hook has not run.)
	if n := s.entries(); n != 11 {
		t.Fatalf("%d entries right after the login, want 11: the login trimmed", n)
	}
	free()
	<-settled
	sh.OnEvicted(s.sessionRemoved)
	wantCount(t, s, 10)
	storetest.WantNotFound(t, s, storetest.SeqHash(0))
	storetest.MustLookup(t, s, storetest.SeqHash(100))
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
	s.settle() // what the housekeeper does, a shard at a time, every minute
	// The revoked session's entry stays until it is used, expires or is
	// evicted; only the live one counts.
	if n := s.entries(); n != 2 {
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
	if n := s.entries(); n != 1 {
		t.Fatalf("a revoked session seen by Lookup was not dropped: %d left", n)
	}
	wantCount(t, s, 1)
}

func TestMemoryStoreGoroutinesReleased(t *testing.T) {
	runtime.GC()
	base := runtime.NumGoroutine()
	file := filepath.Join(t.TempDir(), "s.db")
	for i := range 3 {
		s, cleanup := openMemory(t, &MemoryStore{Persist: file}, storetest.AppID(t, ""), nil)
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
		persist {env.HOME}/wechat.db
	}`)
	if err := m.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if m.MaxSessions != 5000 || m.Persist != "{env.HOME}/wechat.db" {
		t.Fatalf("parsed %+v", m)
	}
	js, _ := json.Marshal(&m)
	if string(js) != `{"max_sessions":5000,"persist":"{env.HOME}/wechat.db"}` {
		t.Fatalf("JSON %s", js)
	}
	// The old name is still read, as itself: Provision warns about it.
	var old MemoryStore
	if err := old.UnmarshalCaddyfile(caddyfile.NewTestDispenser("memory {\n snapshot /var/lib/w.snap\n}")); err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(&old); string(js) != `{"snapshot":"/var/lib/w.snap"}` {
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
		"memory {\n persist\n}":                           "needs one argument",
		"memory {\n persist a b\n}":                       "takes one argument",
		"memory {\n snapshot\n}":                          "needs one argument",
		"memory {\n snapshot a b\n}":                      "takes one argument",
		"memory {\n persist /a\n snapshot /b\n}":          "old name",
		"memory {\n max_session 5\n}":                     "max_session",
		"memory extra":                                    "no arguments",
		"memory {\n max_sessions 5 6\n}":                  "takes one argument",
		"memory {\n max_sessions -1\n}":                   "max_sessions",
		"memory {\n bogus\n}":                             "bogus",
		"memory {\n persist /a\n bogus 1\n}":              "bogus",
		"memory {\n max_sessions 99999999999999999999\n}": "max_sessions",
	} {
		var m MemoryStore
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one mentioning %q", input, err, want)
		}
	}
}

func TestMemoryStoreSnapshotIsPersistsOldName(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	m := &MemoryStore{Snapshot: filepath.Join(dir, "w.snap")}
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if m.path != filepath.Join(dir, "w.snap") {
		t.Fatalf("path %q", m.path)
	}
	both := &MemoryStore{Snapshot: "/a", Persist: "/a"}
	if err := both.Provision(ctx); err == nil || !strings.Contains(err.Error(), "old name") {
		t.Fatalf("persist and snapshot both: %v", err)
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
	for _, u := range []store.User{
		{OpenID: strings.Repeat("o", maxField+1)},
		{OpenID: "o", CountryCode: strings.Repeat("8", maxField+1)},
	} {
		if _, err := packUser(u); err == nil {
			t.Fatal("an oversized field was packed")
		}
	}
	if _, err := packUser(store.User{OpenID: strings.Repeat("o", maxField), CountryCode: strings.Repeat("8", maxField)}); err != nil {
		t.Fatal(err)
	}
}
