package memorystore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

func TestMemoryStorePersistConformance(t *testing.T) {
	storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
		s, _ := openMemory(t, &MemoryStore{Persist: filepath.Join(t.TempDir(), "s.db")}, appID, nil)
		return s
	}, Settle: settle}.Run(t)
}

// restart is what a restart does to a store: the last config lets it go
// (Caddy stopping), and a new process opens the file.
func restart(t *testing.T, cleanup func(), m func() *MemoryStore, app string) (*memoryStore, func()) {
	t.Helper()
	cleanup()
	return openMemory(t, m(), app, nil)
}

// crash leaves the file as a killed process would: what the store had
// queued for the background (removals) never reaches it. Closing a bbolt
// file writes nothing; it only releases its lock for the next "process".
func crash(s *memoryStore, cleanup func()) {
	s.disk.on.Store(false)
	s.disk.qmu.Lock()
	s.disk.qSessions, s.disk.qUsers, s.disk.qPrevKeys = nil, nil, nil
	s.disk.qmu.Unlock()
	cleanup()
}

func TestMemoryStorePersistRoundTrip(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WECHAT_PERSIST_DIR", dir)
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: "{env.WECHAT_PERSIST_DIR}/sub/wechat.db"} }
	file := filepath.Join(dir, "sub", "wechat.db")

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
	// A key rotation: the previous key is kept for the grace, on disk too.
	rotated := alice
	rotated.SessionKey = "k-alice-2"
	if _, err := s.CreateSession(ctx, storetest.Hash("a3"), rotated, time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)

	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no persist file: %v", err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("persist file mode %o, want 600: it holds session keys", mode)
	}
	crash(s, stop) // nothing more is written: every change above is on disk already
	data, _ := os.ReadFile(file)
	for _, secret := range []string{"token-a1", "token-b"} {
		if bytes.Contains(data, []byte(secret)) {
			t.Fatalf("the file contains a raw token %q", secret)
		}
	}

	var logs *observer.ObservedLogs
	s2, stop2 := openMemory(t, cfg(), app, &logs)
	if s2 == s {
		t.Fatal("expected a fresh store (a restart)")
	}
	wantCount(t, s2, 4)
	sess := storetest.MustLookup(t, s2, ha1)
	want := rotated
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
	if k, err := s2.PreviousSessionKey(ctx, alice.OpenID); err != nil || k != "k-alice" {
		t.Fatalf("restored previous key %q, %v", k, err)
	}
	storetest.WantNotFound(t, s2, hgone)
	storetest.WantNotFound(t, s2, hshort)
	if logs.FilterMessage("restored sessions").Len() != 1 {
		t.Fatalf("restore not logged: %v", logs.All())
	}
	// Restored sessions still share their user record.
	if err := s2.BindPhone(ctx, bob.OpenID, "13900002222", "86"); err != nil {
		t.Fatal(err)
	}
	storetest.MustCreate(t, s2, storetest.Hash("a4"), store.User{OpenID: alice.OpenID, SessionKey: "k-new"}, time.Hour)
	if u := storetest.MustLookup(t, s2, ha2).User; u.SessionKey != "k-new" {
		t.Fatalf("restored token does not see the new session key: %+v", u)
	}
	// A clean stop keeps it all too.
	s3, _ := restart(t, stop2, cfg, app)
	if u := storetest.MustLookup(t, s3, hb).User; u.Phone != "13900002222" {
		t.Fatalf("after a clean stop: %+v", u)
	}
	wantCount(t, s3, 5)
}

// A revoked user's tokens never come back: not after a restart, not when
// the user logs in again before it, and not after the expired and revoked
// records were cleaned out of the file.
func TestMemoryStorePersistRevokedStayDead(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	ctx := context.Background()
	s, stop := openMemory(t, cfg(), app, nil)
	alice := store.User{OpenID: "o-alice", SessionKey: "k1"}
	old1, old2 := storetest.Hash("old1"), storetest.Hash("old2")
	storetest.MustCreate(t, s, old1, alice, time.Hour)
	storetest.MustCreate(t, s, old2, alice, time.Hour)
	if n, err := s.RevokeUser(ctx, alice.OpenID); err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v", n, err)
	}
	crash(s, stop)

	s, stop = openMemory(t, cfg(), app, nil)
	storetest.WantNotFound(t, s, old1)
	// She logs in again; the old tokens stay dead, the new one lives.
	fresh := storetest.Hash("fresh")
	storetest.MustCreate(t, s, fresh, alice, time.Hour)
	storetest.WantNotFound(t, s, old2)
	crash(s, stop)
	for range 2 { // (the second time, the stale records are gone from the file)
		s, stop = openMemory(t, cfg(), app, nil)
		storetest.WantNotFound(t, s, old1)
		storetest.WantNotFound(t, s, old2)
		storetest.MustLookup(t, s, fresh)
		s.settle()
		stop()
	}

	// Revoked while a token is still in memory, then a new login before
	// the crash.
	s, stop = openMemory(t, cfg(), app, nil)
	if _, err := s.RevokeUser(ctx, alice.OpenID); err != nil {
		t.Fatal(err)
	}
	again := storetest.Hash("again")
	storetest.MustCreate(t, s, again, alice, time.Hour)
	crash(s, stop)
	s, _ = openMemory(t, cfg(), app, nil)
	storetest.WantNotFound(t, s, fresh)
	storetest.MustLookup(t, s, again)
	wantCount(t, s, 1)
}

// fileKeys counts the records of a bucket of the store's open file.
func fileKeys(t *testing.T, s *memoryStore, bucket []byte) int {
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

func TestMemoryStorePersistExpiredLeaveTheFile(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{Persist: filepath.Join(t.TempDir(), "s.db")}, storetest.AppID(t, ""), nil)
	const ttl = 2 * time.Second // (long enough for 100 writes under -race)
	start := time.Now()
	for i := range 100 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i%30), SessionKey: "k"}, ttl)
	}
	keep := storetest.Hash("keep")
	storetest.MustCreate(t, s, keep, store.User{OpenID: "o-keep", SessionKey: "k"}, time.Hour)
	if n := fileKeys(t, s, bucketSessions); n != 101 && time.Since(start) < ttl {
		t.Fatalf("%d sessions in the file, want 101", n)
	}
	time.Sleep(ttl + 10*time.Millisecond) // (from the last login)
	s.settle()
	if n, u := fileKeys(t, s, bucketSessions), fileKeys(t, s, bucketUsers); n != 1 || u != 1 {
		t.Fatalf("after the sweep: %d sessions and %d users in the file, want 1 and 1", n, u)
	}
	// A logout and an eviction leave it too.
	if err := s.DeleteSession(context.Background(), keep); err != nil {
		t.Fatal(err)
	}
	s.settle()
	if n, u := fileKeys(t, s, bucketSessions), fileKeys(t, s, bucketUsers); n != 0 || u != 0 {
		t.Fatalf("after the logout: %d sessions and %d users in the file", n, u)
	}
}

func TestMemoryStorePersistEvictionOrder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	s, stop := openMemory(t, &MemoryStore{Persist: file}, app, nil)
	for i := range 20 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i), SessionKey: "k"}, time.Hour+time.Duration(i)*time.Millisecond)
	}
	stop()
	// Restarted with room for 5: the newest 5 are kept, and the oldest of
	// them is the next to go.
	s2, _ := openMemory(t, &MemoryStore{Persist: file, MaxSessions: 5}, app, nil)
	wantCount(t, s2, 5)
	for i := 15; i < 20; i++ {
		storetest.MustLookup(t, s2, storetest.SeqHash(i))
	}
	storetest.MustCreate(t, s2, storetest.SeqHash(100), store.User{OpenID: "o100", SessionKey: "k"}, 2*time.Hour)
	s2.settle()
	storetest.WantNotFound(t, s2, storetest.SeqHash(15))
	storetest.MustLookup(t, s2, storetest.SeqHash(16))
	if n := fileKeys(t, s2, bucketSessions); n != 5 {
		t.Fatalf("%d sessions in the file after eviction, want 5", n)
	}
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

// writeLegacy writes a snapshot file the way versions before the persist
// file did.
func writeLegacy(t *testing.T, file, app string, users []store.User, sessions map[store.TokenHash]string, exp time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	sum := sha256.New()
	w := bufio.NewWriter(io.MultiWriter(&buf, sum))
	fmt.Fprintf(w, "%s %d %q\n", legacyMagic, legacyVersion, app)
	enc := gob.NewEncoder(w)
	for _, u := range users {
		if err := enc.Encode(legacyRecord{User: u}); err != nil {
			t.Fatal(err)
		}
	}
	for h, openid := range sessions {
		if err := enc.Encode(legacyRecord{User: store.User{OpenID: openid}, Hash: h[:], Expires: exp.UnixNano()}); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	data := append(buf.Bytes(), sum.Sum(nil)...)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

// setAsideFiles lists the files set aside next to file.
func setAsideFiles(t *testing.T, file string) []string {
	t.Helper()
	m, err := filepath.Glob(file + ".*-2*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

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

	legacyGood := func(t *testing.T, file, app string) []byte {
		return writeLegacy(t, file, app, []store.User{{OpenID: "o", SessionKey: "k"}},
			map[store.TokenHash]string{storetest.Hash("x"): "o"}, time.Now().Add(time.Hour))
	}

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
		{"legacy-corrupt", "corrupt", "checksum", func(t *testing.T, file string) []byte {
			d := legacyGood(t, file, app)
			d[len(d)/2] ^= 0x40
			return d
		}},
		{"legacy-truncated", "corrupt", "truncated", func(t *testing.T, file string) []byte {
			return legacyGood(t, file, app)[:len(legacyMagic)+3]
		}},
		{"legacy-foreign", "foreign", "belongs to app", func(t *testing.T, file string) []byte { return legacyGood(t, file, app+"-x") }},
		{"legacy-future", "future-version", "version 2", func(t *testing.T, file string) []byte {
			d := legacyGood(t, file, app)
			return bytes.Replace(d, []byte(legacyMagic+" 1 "), []byte(legacyMagic+" 2 "), 1)
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

func TestMemoryStoreLegacySnapshotConverted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "wechat.snap")
	app := storetest.AppID(t, "")
	alice := store.User{OpenID: "o-alice", UnionID: "u", SessionKey: "k-alice", Phone: "13800001111", CountryCode: "86"}
	bob := store.User{OpenID: "o-bob", SessionKey: "k-bob"}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	old := writeLegacy(t, file, app, []store.User{alice, bob, {OpenID: "o-nosession", SessionKey: "k"}},
		map[store.TokenHash]string{storetest.Hash("a"): "o-alice", storetest.Hash("b"): "o-bob", storetest.Hash("a2"): "o-alice"}, exp)

	// The old subdirective name, as a Caddyfile of the old version has it.
	var logs *observer.ObservedLogs
	s, stop := openMemory(t, &MemoryStore{Snapshot: file}, app, &logs)
	wantCount(t, s, 3)
	if got := storetest.MustLookup(t, s, storetest.Hash("a")); got.User != alice || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("converted session %+v", got)
	}
	aside := setAsideFiles(t, file)
	if len(aside) != 1 || !strings.Contains(aside[0], ".snapshot-v1-") {
		t.Fatalf("old snapshot set aside as %v", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, old) {
		t.Fatal("the old snapshot was not kept as it was")
	}
	if logs.FilterMessageSnippet("converting").Len() != 1 {
		t.Fatalf("conversion not logged: %v", logs.All())
	}
	// Loaded once: from now on it is a persist file.
	s2, _ := restart(t, stop, func() *MemoryStore { return &MemoryStore{Persist: file} }, app)
	wantCount(t, s2, 3)
	if got := storetest.MustLookup(t, s2, storetest.Hash("b")).User; got != bob {
		t.Fatalf("after the second start %+v", got)
	}
	if len(setAsideFiles(t, file)) != 1 {
		t.Fatal("the converted file was set aside again")
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

// Many goroutines log in, log out, revoke and bind phones at once; then
// the process dies. Whatever order their writes reached the disk in, the
// restarted store answers every token exactly as the old one did.
func TestMemoryStorePersistConcurrentChangesSurviveACrash(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	s, stop := openMemory(t, &MemoryStore{Persist: file}, app, nil)
	ctx := context.Background()
	const workers, ops, users = 8, 150, 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	var hashes []store.TokenHash
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []store.TokenHash
			for i := range ops {
				openid := fmt.Sprint("o", r.IntN(users))
				switch k := r.IntN(10); {
				case k < 6 || len(mine) == 0:
					h := storetest.SeqHash(w*100000 + i)
					u := store.User{OpenID: openid, SessionKey: fmt.Sprint("k", r.IntN(3))}
					if _, err := s.CreateSession(ctx, h, u, time.Hour, time.Minute); err != nil {
						t.Error(err)
						return
					}
					mine = append(mine, h)
				case k < 8:
					if err := s.DeleteSession(ctx, mine[r.IntN(len(mine))]); err != nil {
						t.Error(err)
					}
				case k < 9:
					if _, err := s.RevokeUser(ctx, openid); err != nil {
						t.Error(err)
					}
				default:
					if err := s.BindPhone(ctx, openid, fmt.Sprint("1380000", r.IntN(10000)), "86"); err != nil && err != store.ErrNotFound {
						t.Error(err)
					}
				}
			}
			mu.Lock()
			hashes = append(hashes, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	want := map[store.TokenHash]store.Session{}
	for _, h := range hashes {
		if sess, err := s.Lookup(ctx, h); err == nil {
			want[h] = sess
		}
	}
	n, _ := s.Count(ctx)
	crash(s, stop)
	s2, _ := openMemory(t, &MemoryStore{Persist: file}, app, nil)
	for _, h := range hashes {
		got, err := s2.Lookup(ctx, h)
		w, live := want[h]
		switch {
		case live && err != nil:
			t.Fatalf("a live session was lost: %v", err)
		case !live && err == nil:
			t.Fatalf("a dead session came back: %+v", got.User)
		case live && (got.User != w.User || !got.ExpiresAt.Equal(w.ExpiresAt)):
			t.Fatalf("restored %+v, was %+v", got, w)
		}
	}
	wantCount(t, s2, len(want))
	if len(want) == 0 || n < len(want) {
		t.Fatalf("count %d, live %d", n, len(want))
	}
}

// Churn: sessions come and go (logouts, expiry) while the number alive
// stays the same. bbolt reuses the pages freed, so the file stops growing.
func TestMemoryStorePersistFileDoesNotGrowUnderChurn(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	s, _ := openMemory(t, &MemoryStore{Persist: file}, storetest.AppID(t, ""), nil)
	ctx := context.Background()
	const live = 400
	var sizes []int64
	next := 0
	var wg sync.WaitGroup
	for round := range 8 {
		// Replace every session: half by logout, half by expiry.
		start := next
		for w := range 8 { // concurrent logins, as a gateway has them
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < live; i += 8 {
					ttl := time.Hour
					if i%2 == 0 {
						ttl = 40 * time.Millisecond
					}
					u := store.User{OpenID: fmt.Sprintf("o-%d-%d", round, i), SessionKey: "k"}
					if _, err := s.CreateSession(ctx, storetest.SeqHash(start+i), u, ttl, 0); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		next += live
		for i := start - live + 1; i < start; i += 2 {
			if i >= 0 {
				s.DeleteSession(ctx, storetest.SeqHash(i))
			}
		}
		time.Sleep(50 * time.Millisecond)
		s.settle()
		fi, _ := os.Stat(file)
		sizes = append(sizes, fi.Size())
	}
	t.Logf("file size after each round: %v", sizes)
	if got := fileKeys(t, s, bucketSessions); got > live {
		t.Fatalf("%d sessions in the file, want at most %d", got, live)
	}
	// After the first rounds fill it, the file stays within a margin.
	if last, settled := sizes[len(sizes)-1], sizes[3]; float64(last) > 1.25*float64(settled) {
		t.Fatalf("the file grows under churn: %v", sizes)
	}
}

// A logout or revoke of a session that left memory a moment ago (here as
// the session limit removes one: its removal is only queued for the
// background) is on disk before it is answered: after a crash the
// session does not come back.
func TestMemoryStorePersistLogoutOfALeftSession(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	ctx := context.Background()
	leave := func(s *memoryStore, th store.TokenHash) { s.shard(&th).Delete(string(th[:])) }

	s, stop := openMemory(t, cfg(), app, nil)
	bob, carol := storetest.Hash("bob"), storetest.Hash("carol")
	storetest.MustCreate(t, s, bob, store.User{OpenID: "o-bob", SessionKey: "k"}, time.Hour)
	storetest.MustCreate(t, s, carol, store.User{OpenID: "o-carol", SessionKey: "k"}, time.Hour)
	leave(s, bob)
	if err := s.DeleteSession(ctx, bob); err != nil {
		t.Fatal(err)
	}
	leave(s, carol)
	if _, err := s.RevokeUser(ctx, "o-carol"); err != nil {
		t.Fatal(err)
	}
	crash(s, stop)

	s, _ = openMemory(t, cfg(), app, nil)
	storetest.WantNotFound(t, s, bob)
	storetest.WantNotFound(t, s, carol)
}

// A change that reaches the store after its last config let it go (a
// request that outlived Caddy's shutdown) is an error, not a success that
// never reaches the file.
func TestMemoryStorePersistChangeAfterCloseFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	s, stop := openMemory(t, &MemoryStore{Persist: file}, storetest.AppID(t, ""), nil)
	stop()
	if _, err := s.CreateSession(context.Background(), storetest.Hash("late"), store.User{OpenID: "o-late", SessionKey: "k"}, time.Hour, 0); err == nil {
		t.Fatal("CreateSession after the store was closed: no error")
	}
}
