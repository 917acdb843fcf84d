package memorystore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// The store passes the conformance suite, in memory only and with a
// persist file.
func TestMemoryStorePersistConformance(t *testing.T) {
	storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
		s, _ := openMemory(t, &MemoryStore{Persist: filepath.Join(t.TempDir(), "s.db")}, appID, nil)
		return s
	}, Settle: settle}.Run(t)
}

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
		s, _ := openMemory(t, &MemoryStore{}, appID, nil)
		return s
	}, Settle: settle}.Run(t)
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
