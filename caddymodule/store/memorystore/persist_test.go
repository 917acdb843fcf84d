package memorystore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

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
	leave := func(s *sharedStore, th store.TokenHash) { s.shard(&th).Delete(string(th[:])) }

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

// A replaced session key is on disk before ReplaceSessionKey returns,
// and the previous key it dropped stays dropped after a crash.
func TestMemoryStorePersistReplacedKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "wechat.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	s, stop := openMemory(t, cfg(), app, nil)
	ctx := context.Background()
	h := storetest.Hash("a")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o-alice", SessionKey: "k-1"}, time.Hour)
	storetest.MustCreate(t, s, storetest.Hash("b"), store.User{OpenID: "o-alice", SessionKey: "k-2"}, time.Hour)
	if ok, err := s.ReplaceSessionKey(ctx, "o-alice", "k-2", "k-reset"); err != nil || !ok {
		t.Fatalf("ReplaceSessionKey = %v, %v", ok, err)
	}
	crash(s, stop)
	s, _ = openMemory(t, cfg(), app, nil)
	if u := storetest.MustLookup(t, s, h).User; u.SessionKey != "k-reset" {
		t.Fatalf("after a crash the key is %q, want k-reset", u.SessionKey)
	}
	if k, err := s.PreviousSessionKey(ctx, "o-alice"); err == nil {
		t.Fatalf("after a crash the dropped previous key %q is back", k)
	}
}

// The fold's schedule: a healthy journal is folded every foldEvery (or
// when pressed), one whose last fold failed every foldRetry, which is how
// soon the store recovers once the disk has room again.
func TestFoldSchedule(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	s, _ := openMemory(t, &MemoryStore{Persist: file}, storetest.AppID(t, ""), nil)
	u := store.User{OpenID: "o-fold", SessionKey: "k"}
	foldAfter := func(since time.Duration, failed bool, want int) {
		t.Helper()
		s.disk.lastFold.Store(time.Now().Add(-since).UnixNano())
		s.disk.foldHealth.down.Store(failed)
		s.disk.fold(false)
		if n := fileKeysUnfolded(t, s, bucketSessions); n != want {
			t.Fatalf("%v after the last fold (failed: %v): %d sessions in the file, want %d", since, failed, n, want)
		}
	}
	storetest.MustCreate(t, s, storetest.Hash("a"), u, time.Hour)
	foldAfter(foldRetry+time.Second, false, 0) // healthy: not before foldEvery
	foldAfter(foldRetry+time.Second, true, 1)  // failed: again after foldRetry
	storetest.MustCreate(t, s, storetest.Hash("b"), u, time.Hour)
	foldAfter(foldRetry/2, true, 1)
	foldAfter(foldEvery+time.Second, false, 2)
}
