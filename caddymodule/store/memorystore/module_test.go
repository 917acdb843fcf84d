package memorystore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

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
	if got := sa.(*sharedStore).disk.path(); got != filepath.Join(dir, "a.db") {
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
	if sc != sa || sa.(*sharedStore).maxSessions.Load() != 10 || sa.(*sharedStore).disk.path() != "" {
		t.Fatal("the reload's settings were not applied")
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
