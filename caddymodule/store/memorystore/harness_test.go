package memorystore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// The package's test harness: opening the store as Caddy does, settling
// its housekeeping, and, for the persist file, restarts, crashes and
// files made or damaged on purpose.

// openMemory provisions a MemoryStore module as Caddy would and opens the
// store of appID; the returned cleanup is what Caddy calls when the config
// is unloaded. Log lines are recorded in logs when it is not nil.
func openMemory(t testing.TB, m *MemoryStore, appID string, logs **observer.ObservedLogs) (*sharedStore, func()) {
	t.Helper()
	s, cleanup := storetest.OpenModule(t, m, appID, func() {
		m.logger = zap.NewNop()
		if logs != nil {
			core, obs := observer.New(zap.InfoLevel)
			m.logger, *logs = zap.New(core), obs
		}
	})
	return s.(*sharedStore), cleanup
}

// settle runs the store's housekeeping now (storetest.Suite.Settle).
func settle(_ *testing.T, s store.Store) { s.(*sharedStore).settle() }

// wantCount checks Count exactly, after a round of housekeeping.
func wantCount(t testing.TB, s *sharedStore, want int) {
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
func (s *sharedStore) entries() int {
	n := 0
	for _, sh := range s.shards {
		n += sh.ItemCount()
	}
	return n
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

// restart is what a restart does to a store: the last config lets it go
// (Caddy stopping), and a new process opens the file.
func restart(t *testing.T, cleanup func(), m func() *MemoryStore, app string) (*sharedStore, func()) {
	t.Helper()
	cleanup()
	return openMemory(t, m(), app, nil)
}

// crash leaves the file as a killed process would: what the store had
// queued for the background (removals) never reaches it. Closing a bbolt
// file writes nothing; it only releases its lock for the next "process".
// Nor does the journal get folded: the next start replays it.
func crash(s *sharedStore, cleanup func()) {
	s.disk.on.Store(false)
	s.disk.qmu.Lock()
	s.disk.qSessions, s.disk.qUsers, s.disk.qPrevKeys = nil, nil, nil
	s.disk.qmu.Unlock()
	if f := s.disk.swap(nil); f != nil {
		f.j.close()
		f.db.Close()
	}
	cleanup()
}

// fileKeys counts the records of a bucket of the store's open file, once
// its journal is folded into it.
func fileKeys(t *testing.T, s *sharedStore, bucket []byte) int {
	t.Helper()
	s.disk.fold(true)
	return fileKeysUnfolded(t, s, bucket)
}

// fileKeysUnfolded counts the records of a bucket of the store's open
// file as it is, without the changes still in its journal.
func fileKeysUnfolded(t *testing.T, s *sharedStore, bucket []byte) int {
	t.Helper()
	s.disk.mu.RLock()
	defer s.disk.mu.RUnlock()
	n := 0
	if err := s.disk.f.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// goodFile writes a persist file of app with n sessions and returns its
// bytes. It is compacted (bbolt's Compact): no stale copy of a record in a
// free page, so that every byte a test damages is live data.
func goodFile(t *testing.T, file, app string, n int) []byte {
	t.Helper()
	s, stop := openMemory(t, &MemoryStore{Persist: file}, app, nil)
	for i := range n {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprintf("o-needle-%04d", i), SessionKey: "k"}, time.Hour)
	}
	stop()
	src, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := bolt.Open(file+".compact", 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bolt.Compact(dst, src, 1<<20); err != nil {
		t.Fatal(err)
	}
	src.Close()
	dst.Close()
	if err := os.Rename(file+".compact", file); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rewriteMeta changes a meta value of a closed persist file.
func rewriteMeta(t *testing.T, file, key, value string) []byte {
	t.Helper()
	db, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte(key), []byte(value)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	data, _ := os.ReadFile(file)
	return data
}

// setAsideFiles lists the files set aside next to file.
func setAsideFiles(t *testing.T, file string) []string {
	t.Helper()
	m, err := filepath.Glob(file + ".*-2*")
	if err != nil {
		t.Fatal(err)
	}
	// (a file's journal is set aside with it, beside it)
	return slices.DeleteFunc(m, func(p string) bool { return strings.HasSuffix(p, "-journal") })
}
