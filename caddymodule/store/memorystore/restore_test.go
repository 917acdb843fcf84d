package memorystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// A reload that adds persist keeps every session and writes them all;
// one that removes it keeps them too and sets the file aside (a later
// start must not restore what it holds); a reload that failed after
// opening the store gives the old settings back.
func TestMemoryStoreReloadChangesPersist(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "w.db")
	app := storetest.AppID(t, "")
	ctx := context.Background()
	// A stale file of ours from some earlier run, at the path.
	stale := goodFile(t, file, app, 3)

	s, stopPlain := openMemory(t, &MemoryStore{}, app, nil)
	for i := range 500 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i%50), SessionKey: "k"}, time.Hour)
	}
	var logs *observer.ObservedLogs
	s2, stopPersist := openMemory(t, &MemoryStore{Persist: file}, app, &logs)
	if s2 != s {
		t.Fatal("adding persist made a new store")
	}
	stopPlain() // the old config goes
	if aside := setAsideFiles(t, file); len(aside) != 1 || !strings.Contains(aside[0], ".stale-") {
		t.Fatalf("the stale file: %v", aside)
	} else if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, stale) {
		t.Fatal("the stale file was changed")
	}
	if n := fileKeys(t, s, bucketSessions); n != 500 {
		t.Fatalf("%d sessions written when persist was added, want 500", n)
	}
	if err := s.DeleteSession(ctx, storetest.SeqHash(0)); err != nil {
		t.Fatal(err)
	}
	crash(s, stopPersist)
	s, stopPersist = openMemory(t, &MemoryStore{Persist: file}, app, nil)
	wantCount(t, s, 499)
	storetest.WantNotFound(t, s, storetest.SeqHash(0))

	// A reload that fails after opening the store with other settings
	// (another module of the new config fails to provision): the old
	// config's settings come back.
	n0 := len(setAsideFiles(t, file))
	_, cleanupFailed := openMemory(t, &MemoryStore{}, app, nil)
	if s.disk.path() != "" || len(setAsideFiles(t, file)) != n0+1 {
		t.Fatal("the new config's settings did not apply")
	}
	cleanupFailed()
	if s.disk.path() != file {
		t.Fatalf("after the failed reload the store persists to %q", s.disk.path())
	}
	if n := fileKeys(t, s, bucketSessions); n != 499 {
		t.Fatalf("%d sessions in the file after the failed reload", n)
	}

	// Removing persist: sessions stay, the file is set aside.
	s3, _ := openMemory(t, &MemoryStore{}, app, nil)
	stopPersist()
	if s3 != s || s.disk.path() != "" {
		t.Fatal("removing persist")
	}
	storetest.MustLookup(t, s, storetest.SeqHash(1))
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file no longer used is still at the path: %v", err)
	}
}
