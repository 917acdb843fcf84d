package memorystore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func openTestBolt(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := openBolt(filepath.Join(t.TempDir(), "c.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return db
}

// Every caller of a group commit is answered, with its own error when its
// change fails or panics, and a change answered nil is committed.
func TestGroupCommitAnswersEveryCaller(t *testing.T) {
	db := openTestBolt(t)
	var g groupCommit
	errBad := errors.New("bad change")
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.update(db, func(tx *bolt.Tx) error {
				switch i % 16 {
				case 5:
					return errBad
				case 7:
					panic("a broken change")
				}
				return tx.Bucket([]byte("b")).Put(fmt.Appendf(nil, "k%d", i), []byte("v"))
			})
		}()
	}
	wg.Wait()
	db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		for i, err := range errs {
			got := b.Get(fmt.Appendf(nil, "k%d", i)) != nil
			switch i % 16 {
			case 5:
				if !errors.Is(err, errBad) || got {
					t.Errorf("change %d: err %v, written %v; want its own error, nothing written", i, err, got)
				}
			case 7:
				if err == nil || got {
					t.Errorf("change %d (panics): err %v, written %v; want an error, nothing written", i, err, got)
				}
			default:
				if err != nil || !got {
					t.Errorf("change %d: err %v, written %v; want nil, written", i, err, got)
				}
			}
		}
		return nil
	})
	if g.busy || len(g.queue) != 0 {
		t.Errorf("after every caller returned: busy %v, %d queued", g.busy, len(g.queue))
	}
}

// A commit that fails (the file closed under it) answers every caller
// with the error, and the queue stays usable.
func TestGroupCommitFailedCommit(t *testing.T) {
	db := openTestBolt(t)
	var g groupCommit
	db.Close()
	if err := g.update(db, func(*bolt.Tx) error { return nil }); err == nil {
		t.Fatal("a change to a closed file was answered nil")
	}
	if g.busy {
		t.Fatal("the queue stayed busy after a failed commit")
	}
}
