package memorystore

import (
	"path/filepath"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

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
