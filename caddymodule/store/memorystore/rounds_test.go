package memorystore

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// failingSyncs makes the next n fdatasyncs of f's journal fail, after
// their writes reached the file (as an I/O error at flush time leaves
// them: perhaps on disk, perhaps not), and counts the calls.
func failingSyncs(f *diskFile, n int32) *atomic.Int32 {
	var calls atomic.Int32
	f.j.datasync = func(file *os.File, path string) error {
		if calls.Add(1) <= n {
			return errors.New("injected: fdatasync failed")
		}
		return fdatasync(file, path)
	}
	return &calls
}

// A round whose fdatasync fails has its records' bytes in the file,
// maybe on the disk. Before it answers the failure, it writes voids over
// them: a crash right after (no later write to carry the voids) replays
// nothing of a change answered as failed.
func TestRoundFailedSyncVoidedBeforeAnswered(t *testing.T) {
	f := testJournal(t, filepath.Join(t.TempDir(), "j.db"), 64<<10)
	defer f.close()
	if err := putUser(f, "a", "1"); err != nil {
		t.Fatal(err)
	}
	calls := failingSyncs(f, 1)
	if err := putUser(f, "b", "failed"); err == nil {
		t.Fatal("a write whose fdatasync failed was answered as made")
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d fdatasyncs for the failed round, want 2 (the failed one, then the voids')", n)
	}
	got := usersIn(t, crashCopy(t, f, t.TempDir()))
	if got["a"] != "1" || len(got) != 1 {
		t.Fatalf("after a crash right after the failed write: %v, want a only", got)
	}
	if err := putUser(f, "c", "3"); err != nil {
		t.Fatal(err)
	}
	got = usersIn(t, crashCopy(t, f, t.TempDir()))
	if got["a"] != "1" || got["c"] != "3" || len(got) != 2 {
		t.Fatalf("after the next write and a crash: %v, want a and c", got)
	}
}

// When the voids' write fails too (the disk still failing), the next
// round that succeeds carries them, and the failed change still never
// lands.
func TestRoundVoidsCarriedByTheNextRound(t *testing.T) {
	f := testJournal(t, filepath.Join(t.TempDir(), "j.db"), 64<<10)
	defer f.close()
	if err := putUser(f, "a", "1"); err != nil {
		t.Fatal(err)
	}
	failingSyncs(f, 4)
	for _, k := range []string{"b", "c"} {
		if err := putUser(f, k, "failed"); err == nil {
			t.Fatalf("write %s answered as made while every fdatasync fails", k)
		}
	}
	if err := putUser(f, "d", "4"); err != nil {
		t.Fatal(err)
	}
	got := usersIn(t, crashCopy(t, f, t.TempDir()))
	if got["a"] != "1" || got["d"] != "4" || len(got) != 2 {
		t.Fatalf("after the disk came back and a crash: %v, want a and d", got)
	}
}

// A change appended just before a round started, whose caller asks for
// it only after that round failed and voided it, is answered with the
// failure: a later round made its void durable, not the change.
func TestRoundStragglerToldItsRecordFailed(t *testing.T) {
	f := testJournal(t, filepath.Join(t.TempDir(), "j.db"), 64<<10)
	defer f.close()
	end, err := f.j.add(nil, f.db, func(w *diskWriter) error { return w.sink.put('u', []byte("s"), []byte("straggler")) })
	if err != nil || end == 0 {
		t.Fatalf("add: %d, %v", end, err)
	}
	failingSyncs(f, 2)
	if err := putUser(f, "b", "failed"); err == nil {
		t.Fatal("a write whose round failed was answered as made")
	}
	if err := putUser(f, "c", "3"); err != nil {
		t.Fatal(err)
	}
	if err := f.j.await(end); err == nil {
		t.Fatal("the straggler's change, voided by a failed round, was answered as made")
	}
	got := usersIn(t, crashCopy(t, f, t.TempDir()))
	if got["c"] != "3" || len(got) != 1 {
		t.Fatalf("after a crash: %v, want c only", got)
	}
	// Records after the void are answered as usual.
	if err := putUser(f, "d", "4"); err != nil {
		t.Fatal(err)
	}
}

// Consecutive failed rounds make one void range; a success in between
// starts another. The ranges are kept while a writer has yet to ask
// about its record (here a straggler, appended before the failures), and
// let go once none has: they do not grow with every failure.
func TestRoundVoidRanges(t *testing.T) {
	f := testJournal(t, filepath.Join(t.TempDir(), "j.db"), 64<<10)
	defer f.close()
	if err := putUser(f, "s", "synced"); err != nil {
		t.Fatal(err)
	}
	end, err := f.j.add(nil, f.db, func(w *diskWriter) error { return w.sink.put('u', []byte("t"), []byte("straggler")) })
	if err != nil || end == 0 {
		t.Fatalf("add: %d, %v", end, err)
	}
	failingSyncs(f, 4) // two rounds, each failing twice
	for _, k := range []string{"a", "b"} {
		if err := putUser(f, k, "failed"); err == nil {
			t.Fatalf("write %s answered as made", k)
		}
	}
	if err := putUser(f, "c", "3"); err != nil {
		t.Fatal(err)
	}
	failingSyncs(f, 2)
	if err := putUser(f, "d", "failed"); err == nil {
		t.Fatal("write d answered as made")
	}
	f.j.mu.Lock()
	voids := append([]voidRange(nil), f.j.voids...)
	f.j.mu.Unlock()
	if len(voids) != 2 {
		t.Fatalf("void ranges %+v, want 2", voids)
	}
	for _, v := range voids {
		if v.from >= v.to || v.err == nil {
			t.Fatalf("void range %+v", v)
		}
	}
	if voids[0].to > voids[1].from {
		t.Fatalf("void ranges overlap: %+v", voids)
	}
	if err := f.j.await(end); err == nil {
		t.Fatal("the straggler, voided by the first failed round, was answered as made")
	}
	f.j.mu.Lock()
	left, unanswered := len(f.j.voids), f.j.unanswered
	f.j.mu.Unlock()
	if left != 0 || unanswered != 0 {
		t.Fatalf("with every writer answered: %d void ranges kept, %d records unanswered; want 0, 0", left, unanswered)
	}
	// A failure now starts afresh, and is still told.
	failingSyncs(f, 2)
	if err := putUser(f, "e", "failed"); err == nil {
		t.Fatal("write e answered as made")
	}
	if err := putUser(f, "g", "7"); err != nil {
		t.Fatal(err)
	}
	got := usersIn(t, crashCopy(t, f, t.TempDir()))
	if got["s"] != "synced" || got["c"] != "3" || got["g"] != "7" || len(got) != 3 {
		t.Fatalf("after a crash: %v, want s, c and g", got)
	}
}
