package caddymodule

import (
	"sync"
	"time"
)

// storeLogInterval is how often, at most, one store operation's failure is
// logged while the store keeps failing.
const storeLogInterval = 10 * time.Second

// storeFailureLog keeps an outage of the session store (Redis down, a full
// disk under the persist file) from writing one Error line per request:
// at a few thousand requests a second that would bury the log and cost
// more than the answers. The first failure of an operation is logged at
// once; those after it within storeLogInterval are only counted, and the
// next line written says how many it stands for. Every failure is still
// counted in store_errors_total, and the stores log their own
// transitions (failing, recovered).
type storeFailureLog struct {
	mu    sync.Mutex
	ops   map[string]*storeOpLog
	now   func() time.Time
	every time.Duration
}

type storeOpLog struct {
	last       time.Time
	suppressed int
}

func newStoreFailureLog() *storeFailureLog {
	return &storeFailureLog{ops: map[string]*storeOpLog{}, now: time.Now, every: storeLogInterval}
}

// allow reports whether a failure of operation is to be logged now, and
// how many failures of it went unlogged since its last line.
//
// A nil log allows everything (a Handler made without Provision).
func (l *storeFailureLog) allow(operation string) (ok bool, suppressed int) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	op := l.ops[operation]
	if op == nil {
		// Operations are the handler's own constants: the map stays small.
		op = &storeOpLog{}
		l.ops[operation] = op
	}
	now := l.now()
	if !op.last.IsZero() && now.Sub(op.last) < l.every {
		op.suppressed++
		return false, 0
	}
	suppressed, op.suppressed, op.last = op.suppressed, 0, now
	return true, suppressed
}
