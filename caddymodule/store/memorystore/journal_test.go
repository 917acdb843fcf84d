package memorystore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// testJournal makes a persist file at path with a journal of small
// regions, so that a test switches and reuses them often.
func testJournal(t *testing.T, path string, regionSize int) *diskFile {
	t.Helper()
	f, err := createFile(path, "wx_journal_test")
	if err != nil {
		t.Fatal(err)
	}
	f.j.close()
	u, _, err := readUnfolded(path, f.db)
	if err != nil {
		t.Fatal(err)
	}
	if f.j, err = createJournal(journalPath(path), u.id, regionSize, u.next); err != nil {
		t.Fatal(err)
	}
	return f
}

// putUser writes key → val as a users record, through the journal.
func putUser(f *diskFile, key, val string) error {
	return f.j.write(nil, f.db, func(w *diskWriter) error { return w.sink.put('u', []byte(key), []byte(val)) })
}

// crashCopy copies the persist file and its journal as they are on disk
// now (a kill -9 keeps what was written) into dir, and replays the copy's
// journal into the copy, as a start does.
func crashCopy(t *testing.T, f *diskFile, dir string) *bolt.DB {
	t.Helper()
	to := filepath.Join(dir, filepath.Base(f.path))
	for _, p := range [][2]string{{f.path, to}, {journalPath(f.path), journalPath(to)}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := openBolt(to, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u, aside, err := readUnfolded(to, db)
	if err != nil || aside != "" {
		t.Fatalf("reading the journal of the copy: %v (set aside: %q)", err, aside)
	}
	if err := u.replay(db); err != nil {
		t.Fatal(err)
	}
	return db
}

func usersIn(t *testing.T, db *bolt.DB) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error { got[string(k)] = string(v); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// Writers and folds at once, over regions so small that they switch every
// few records: every write answered is in the file after a crash, with
// its last value, whatever the region it was in and however far its fold
// had come.
func TestJournalWritesBesideFolds(t *testing.T) {
	f := testJournal(t, filepath.Join(t.TempDir(), "j.db"), 8<<10)
	defer f.close()
	const writers, each = 8, 300
	stop := make(chan struct{})
	folded := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				folded <- n
				return
			default:
			}
			if err := f.j.fold(f.db); err != nil {
				t.Error(err)
			}
			n++
		}
	}()
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k, v := fmt.Sprintf("w%d-%d", w, i%50), fmt.Sprintf("v%d", i)
				for {
					err := putUser(f, k, v)
					if errors.Is(err, errJournalFull) {
						time.Sleep(time.Millisecond) // (the fold frees a region)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
				mu.Lock()
				want[k] = v
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	folds := <-folded
	got := usersIn(t, crashCopy(t, f, t.TempDir()))
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after the crash %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d records after the crash, want %d", len(got), len(want))
	}
	t.Logf("%d writes, %d syncs, %d folds", f.j.records.Load(), f.j.syncs.Load(), folds)
}

// A write that fails (the disk full, an I/O error) is answered with the
// error and never reaches the disk later, when the next write succeeds:
// its caller was told it was not made.
func TestJournalFailedWriteNeverLands(t *testing.T) {
	f := testJournal(t, filepath.Join(t.TempDir(), "j.db"), 64<<10)
	defer f.close()
	if err := putUser(f, "a", "1"); err != nil {
		t.Fatal(err)
	}
	good := f.j.f
	ro, err := os.Open(journalPath(f.path)) // (writes to it fail)
	if err != nil {
		t.Fatal(err)
	}
	f.j.f = ro
	if err := putUser(f, "b", "failed"); err == nil {
		t.Fatal("a write to a read-only journal succeeded")
	}
	ro.Close()
	f.j.f = good
	if err := putUser(f, "c", "3"); err != nil {
		t.Fatal(err)
	}
	got := usersIn(t, crashCopy(t, f, t.TempDir()))
	if got["a"] != "1" || got["c"] != "3" || len(got) != 2 {
		t.Fatalf("after the crash: %v, want a and c only", got)
	}
}

// A crash can tear the last record (its sync never returned, so it was
// never answered): the records before it replay, it and the zeros after
// do not.
func TestJournalTornTail(t *testing.T) {
	f := testJournal(t, filepath.Join(t.TempDir(), "j.db"), 64<<10)
	defer f.close()
	var start, end int // the last record's bytes in its region
	for i := range 10 {
		f.j.mu.Lock()
		start = len(f.j.regions[f.j.active].buf)
		f.j.mu.Unlock()
		if err := putUser(f, fmt.Sprint("k", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	f.j.mu.Lock()
	a := f.j.regions[f.j.active]
	end = len(a.buf)
	f.j.mu.Unlock()
	// Tear the last record: its second half lost.
	zeros := make([]byte, (end-start)/2)
	if _, err := f.j.f.WriteAt(zeros, f.j.regionOffset(a.index)+int64(end-len(zeros))); err != nil {
		t.Fatal(err)
	}
	got := usersIn(t, crashCopy(t, f, t.TempDir()))
	if len(got) != 9 || got["k8"] != "v" || got["k9"] != "" {
		t.Fatalf("after a torn last record: %v, want k0-k8", got)
	}
}

// A journal beside a persist file that is not its own (the file replaced
// by hand) is set aside at the start, never replayed into the file.
func TestJournalOfAnotherFileSetAside(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.db")
	app := storetest.AppID(t, "")
	s, stop := openMemory(t, &MemoryStore{Persist: file}, app, nil)
	gone := storetest.Hash("gone")
	storetest.MustCreate(t, s, gone, store.User{OpenID: "o-gone", SessionKey: "k"}, time.Hour)
	crash(s, stop)
	journal, err := os.ReadFile(journalPath(file))
	if err != nil {
		t.Fatal(err)
	}
	// Another file of the same app, with nothing in it, takes the place
	// of the first; the first one's journal stays.
	other := filepath.Join(t.TempDir(), "other.db")
	_, stop2 := openMemory(t, &MemoryStore{Persist: other}, app, nil)
	stop2()
	b, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ = openMemory(t, &MemoryStore{Persist: file}, app, nil)
	storetest.WantNotFound(t, s, gone)
	aside, _ := filepath.Glob(journalPath(file) + ".foreign-*")
	if len(aside) != 1 {
		t.Fatalf("journals set aside: %v", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, journal) {
		t.Fatal("the journal set aside is not the one that was there")
	}
}

// A change made just before a crash is in the journal only; the next
// start replays it, and a logout made before the crash stays. Twice: the
// second time in the journal the first start took over.
func TestJournalReplayedAtStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	s, stop := openMemory(t, cfg(), app, nil)
	s.disk.lastFold.Store(time.Now().Add(time.Hour).UnixNano()) // (no fold by the housekeeper)
	kept, out := storetest.Hash("kept"), storetest.Hash("out")
	storetest.MustCreate(t, s, kept, store.User{OpenID: "o-kept", SessionKey: "k"}, time.Hour)
	storetest.MustCreate(t, s, out, store.User{OpenID: "o-out", SessionKey: "k"}, time.Hour)
	if err := s.DeleteSession(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	if n := fileKeysUnfolded(t, s, bucketSessions); n != 0 {
		t.Fatalf("%d sessions already folded into the file, want none (the test needs them in the journal)", n)
	}
	crash(s, stop)
	s, stop = openMemory(t, cfg(), app, nil)
	storetest.MustLookup(t, s, kept)
	storetest.WantNotFound(t, s, out)
	wantCount(t, s, 1)

	// The journal is taken over at that start, its old records left in
	// place: a logout now, then another crash, and the old login's
	// record must not come back.
	s.disk.lastFold.Store(time.Now().Add(time.Hour).UnixNano())
	if err := s.DeleteSession(t.Context(), kept); err != nil {
		t.Fatal(err)
	}
	crash(s, stop)
	s, _ = openMemory(t, cfg(), app, nil)
	storetest.WantNotFound(t, s, kept)
	wantCount(t, s, 0)
}

// A revoke whose write comes after a login of the same user (the login's
// change in memory came after the revoke's, its record before) deletes
// every session of the user that memory does not hold live, folded or
// still in the journal, and keeps the new login's.
func TestJournalRevokeRacedByLogin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	s, stop := openMemory(t, cfg(), app, nil)
	s.disk.lastFold.Store(time.Now().Add(time.Hour).UnixNano()) // (no fold by the folder)
	folded, unfolded, raced := storetest.Hash("folded"), storetest.Hash("unfolded"), storetest.Hash("raced")
	u := store.User{OpenID: "o-race", SessionKey: "k"}
	storetest.MustCreate(t, s, folded, u, time.Hour)
	s.disk.fold(true)
	storetest.MustCreate(t, s, unfolded, u, time.Hour)
	// The revoke's change in memory (RevokeUser's first half)...
	s.mu.Lock()
	rec := s.users[u.OpenID]
	delete(s.users, u.OpenID)
	rec.u.Store(nil)
	s.revoked += int(rec.n)
	s.mu.Unlock()
	// ...a login of the user, written at once...
	storetest.MustCreate(t, s, raced, u, time.Hour)
	// ...and the revoke's write (its second half), after it.
	if err := s.disk.write(func(w *diskWriter) error { return w.revoked(u.OpenID) }); err != nil {
		t.Fatal(err)
	}
	crash(s, stop)
	s, _ = openMemory(t, cfg(), app, nil)
	storetest.MustLookup(t, s, raced)
	storetest.WantNotFound(t, s, folded)
	storetest.WantNotFound(t, s, unfolded)
}

// While folds fail (the persist file cannot grow: a full disk), changes
// go on into the journal's room and are answered; once both regions are
// taken, a change is refused with errJournalFull, and none is lost. When
// a fold succeeds again, changes are answered again.
func TestJournalFullWhileFoldsFail(t *testing.T) {
	f := testJournal(t, filepath.Join(t.TempDir(), "j.db"), 8<<10)
	defer f.close()
	roPath := filepath.Join(t.TempDir(), "ro.db")
	ro, err := bolt.Open(roPath, 0o600, nil) // (an empty file, then read-only)
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
	if ro, err = bolt.Open(roPath, 0o600, &bolt.Options{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	answered := 0
	for ; ; answered++ {
		err := putUser(f, fmt.Sprint("k", answered), "v")
		if errors.Is(err, errJournalFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.j.fold(ro) == nil { // (a fold that cannot write)
			t.Fatal("a fold into a read-only file succeeded")
		}
		if answered > 1000 {
			t.Fatal("the journal never filled")
		}
	}
	if answered < 50 {
		t.Fatalf("only %d changes answered before the journal filled", answered)
	}
	if err := f.j.fold(f.db); err != nil {
		t.Fatal(err)
	}
	if err := putUser(f, "after", "v"); err != nil {
		t.Fatalf("a change once a fold succeeded: %v", err)
	}
	got := usersIn(t, crashCopy(t, f, t.TempDir()))
	if len(got) != answered+1 || got["after"] != "v" || got[fmt.Sprint("k", answered-1)] != "v" {
		t.Fatalf("after the crash: %d records, want %d", len(got), answered+1)
	}
}
