package memorystore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

func TestMemoryStoreBadFilesSetAside(t *testing.T) {
	app := storetest.AppID(t, "")
	good := goodFile(t, filepath.Join(t.TempDir(), "good.db"), app, 600)
	needle := bytes.Index(good, []byte("o-needle-0300"))
	if needle < 0 {
		t.Fatal("no record found in the file")
	}
	flipped := bytes.Clone(good)
	flipped[needle+len("o-needle-0")] ^= 0x01 // an openid byte: its record's checksum fails
	torn := bytes.Clone(good)
	page := needle / 4096 * 4096
	clear(torn[page : page+4096]) // a page that never reached the disk

	otherBolt := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(otherBolt, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("certificates")); return err })
	db.Close()
	otherBoltData, _ := os.ReadFile(otherBolt)

	cases := []struct {
		name, reason, want string
		data               func(t *testing.T, file string) []byte
	}{
		{"corrupt-record", "corrupt", "checksum", func(*testing.T, string) []byte { return flipped }},
		{"torn-page", "corrupt", "", func(*testing.T, string) []byte { return torn }},
		{"truncated", "corrupt", "", func(*testing.T, string) []byte { return good[:len(good)/2] }},
		{"truncated-to-a-page", "corrupt", "", func(*testing.T, string) []byte { return good[:4096] }},
		{"foreign", "foreign", "belongs to app", func(t *testing.T, file string) []byte {
			return goodFile(t, file, app+"-other", 3)
		}},
		{"future-version", "future-version", "newer version", func(t *testing.T, file string) []byte {
			goodFile(t, file, app, 3)
			return rewriteMeta(t, file, "version", strconv.Itoa(fileVersion+1))
		}},
		{"another-bbolt-database", "not-ours", "not a persist file", func(*testing.T, string) []byte { return otherBoltData }},
		{"text", "not-ours", "not a persist file", func(*testing.T, string) []byte { return []byte("my notes\n") }},
		{"empty", "not-ours", "empty", func(*testing.T, string) []byte { return []byte{} }},
		{"old-snapshot-file", "not-ours", "not a persist file", func(*testing.T, string) []byte {
			// The format of the snapshot files of early builds, which no
			// release wrote: nothing reads it, it is set aside as any file.
			return []byte("caddy-wechat-auth snapshot 1 \"" + app + "\"\n\x00\x01")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.db")
			data := tc.data(t, file)
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs *observer.ObservedLogs
			s, stop := openMemory(t, &MemoryStore{Persist: file}, app, &logs)
			wantCount(t, s, 0)
			errs := logs.FilterLevelExact(zap.ErrorLevel).All()
			if len(errs) != 1 || errs[0].ContextMap()["reason"] != tc.reason ||
				!strings.Contains(fmt.Sprint(errs[0].ContextMap()["problem"]), tc.want) {
				t.Fatalf("want one error log with reason %q mentioning %q, got %v", tc.reason, tc.want, logs.All())
			}
			// Set aside, byte for byte, under the name the log gives.
			aside := setAsideFiles(t, file)
			if len(aside) != 1 || aside[0] != errs[0].ContextMap()["moved_to"] || !strings.Contains(aside[0], "."+tc.reason+"-") {
				t.Fatalf("set aside as %v; log %v", aside, errs[0].ContextMap())
			}
			if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, data) {
				t.Fatal("the file set aside is not the original")
			}
			// The gateway works, and persists to a new file of its own.
			h := storetest.Hash("after")
			storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
			s2, _ := restart(t, stop, func() *MemoryStore { return &MemoryStore{Persist: file} }, app)
			storetest.MustLookup(t, s2, h)
		})
	}
}

func TestMemoryStorePersistPathProblemsFailTheConfig(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	open := func(file, app string) error {
		m := &MemoryStore{Persist: file}
		provisionIn(t, ctx, m)
		_, err := m.Open(ctx, app)
		if err == nil {
			m.Cleanup()
		}
		return err
	}

	// A directory where the file should be is not set aside: it is a
	// config error.
	d := filepath.Join(dir, "adir")
	os.Mkdir(d, 0o700)
	if err := open(d, storetest.AppID(t, "d")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a directory: %v", err)
	}

	// Two apps, one file.
	shared := filepath.Join(dir, "shared.db")
	openMemory(t, &MemoryStore{Persist: shared}, storetest.AppID(t, "a"), nil)
	if err := open(shared, storetest.AppID(t, "b")); err == nil || !strings.Contains(err.Error(), "already used by app") {
		t.Fatalf("two apps on one file: %v", err)
	}

	// A file another process holds (bbolt locks it) is not touched.
	locked := filepath.Join(dir, "locked.db")
	goodFile(t, locked, storetest.AppID(t, "l"), 1)
	before, _ := os.ReadFile(locked)
	db, err := bolt.Open(locked, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := open(locked, storetest.AppID(t, "l")); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("a locked file: %v", err)
	}
	if after, _ := os.ReadFile(locked); !bytes.Equal(after, before) || len(setAsideFiles(t, locked)) != 0 {
		t.Fatal("a locked file was changed or moved")
	}
}
