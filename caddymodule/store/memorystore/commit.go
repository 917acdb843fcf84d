package memorystore

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Group commit: every change that must be on disk before it is answered
// joins a queue, and one caller at a time (the leader) takes the whole
// queue, runs its changes in one write transaction, commits it (bbolt's
// two fsyncs) and answers every caller in it. When the leader is done,
// the oldest caller that queued meanwhile leads the next transaction at
// once: no timer, so a lone change waits for nothing but its own commit,
// and under a storm every transaction carries all that arrived during the
// one before, however long its fsyncs took. (bbolt's DB.Batch cuts a
// batch on a timer instead, so slow commits each carry only a timer's
// worth of changes and the rest queue behind them.)
//
// No goroutine is kept: leaders are callers, each leading one
// transaction, so none waits for others' commits after its own.

// errLead tells a queued caller that it leads the next transaction.
var errLead = errors.New("memory store: lead the next commit")

// commitCall is one queued change and where its answer goes.
type commitCall struct {
	fn   func(*bolt.Tx) error
	done chan error // buffered: an answer never waits for its reader
}

// groupCommit is the queue of changes waiting for a transaction.
type groupCommit struct {
	mu    sync.Mutex
	queue []*commitCall
	busy  bool // a leader is running a transaction, or has been named

	// commits and calls count the transactions run and the calls they
	// carried (the batching a storm gets: BenchmarkLoginStorm).
	commits, calls atomic.Int64
}

// update runs fn in a write transaction of db shared with the changes
// queued beside it, and returns once that transaction is on disk (or has
// failed). fn may run more than once: it must be idempotent.
func (g *groupCommit) update(db *bolt.DB, fn func(*bolt.Tx) error) error {
	c := &commitCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead {
		if err := <-c.done; err != errLead {
			return err
		}
	}
	g.mu.Lock()
	calls := g.queue
	g.queue = nil
	g.mu.Unlock()
	g.commits.Add(1)
	g.calls.Add(int64(len(calls)))
	commitAll(db, calls)
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- errLead
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return <-c.done
}

// commitAll runs calls in one transaction and answers each. A call whose
// fn fails is taken out and run in a transaction of its own, so that it
// gets its own error and the others are not refused for it.
func commitAll(db *bolt.DB, calls []*commitCall) {
	for len(calls) > 0 {
		failed := -1
		err := db.Update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := safeCall(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, c := range calls {
				c.done <- err
			}
			return
		}
		c := calls[failed]
		calls = append(calls[:failed:failed], calls[failed+1:]...)
		c.done <- db.Update(func(tx *bolt.Tx) error { return safeCall(c.fn, tx) })
	}
}

// safeCall runs fn, turning a panic into an error: a leader must answer
// every caller it took, or they would wait forever.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("memory store: writing the persist file: %v", r)
		}
	}()
	return fn(tx)
}
