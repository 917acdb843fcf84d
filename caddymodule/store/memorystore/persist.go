package memorystore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// The persist file as the store sees it: which file (swap), the write
// that each change makes to its journal before it is answered (write),
// the queue of removals that need no answer, written in the background
// (flush), and the fold of the journal into the file (fold). What a write
// puts on disk is decided in writer.go; the bytes are format.go's and
// journal.go's.

// errClosed answers a change made after the store was let go.
var errClosed = errors.New("memory store: closed (Caddy is stopping)")

// flushChunk bounds the removals written per background record, so that
// a login's write never waits long behind one.
const flushChunk = 2048

// diskFile is an open persist file and its journal.
type diskFile struct {
	db   *bolt.DB
	j    *journal
	path string
}

// close folds the journal into the file and closes both.
func (f *diskFile) close() error {
	err := f.j.foldAll(f.db)
	return errors.Join(err, f.j.close(), f.db.Close())
}

// diskState is the store's persist file, if it has one, and the removals
// waiting to be written to it.
type diskState struct {
	s        *sharedStore
	mu       sync.RWMutex  // read-held by every write in flight; write-held to change f
	f        *diskFile     // nil: nothing is persisted
	closed   bool          // the store is gone: a write is an error, not a no-op
	on       atomic.Bool   // f != nil, read by the OnEvicted hooks without mu
	foldKick chan struct{} // asks the folder for a fold (journal.kick)

	lastFold atomic.Int64 // when fold last ran, in Unix ns

	flushMu   sync.Mutex // one flush at a time
	qmu       sync.Mutex
	qSessions []string // session keys (U + hash) of sessions removed from memory
	qUsers    []string // openids whose record left memory
	qPrevKeys []string // openids whose previous key left memory
	flushing  []string // the session keys a flush has taken and not written yet

	health     diskHealth // writes failing or not, for the log (diskhealth.go)
	foldHealth diskHealth // folds failing or not
}

// path is the file persisted to, or "".
func (d *diskState) path() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.f == nil {
		return ""
	}
	return d.f.path
}

// write appends the writes fn makes to the journal, as one record, and
// returns once an fdatasync shared with the records beside it has put it
// on disk; without a persist file it does nothing.
func (d *diskState) write(fn func(*diskWriter) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		// A request that outlived Caddy's shutdown: its change would
		// be answered but never reach the file.
		return errClosed
	}
	if d.f == nil {
		return nil
	}
	err := d.f.j.write(d.s, d.f.db, fn)
	if err != nil {
		d.noteWrite(d.f.path, err)
		return fmt.Errorf("memory store: writing %s: %w", d.f.path, err)
	}
	d.noteWrite(d.f.path, nil)
	return nil
}

// swap makes f the persist file (nil: none) once the writes in flight to
// the old one are done, and returns the old one.
func (d *diskState) swap(f *diskFile) *diskFile {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.f
	d.f = f
	d.on.Store(f != nil)
	if f != nil {
		f.j.kick = d.kickFold
		d.lastFold.Store(time.Now().UnixNano())
	}
	return old
}

// queueRemoved queues a session that left memory, and its user's record
// when it was the last session (openid is then set). A revoked user's
// sessions need nothing: the revoke deleted them from the file.
func (d *diskState) queueRemoved(th string, u *packedUser, last bool) {
	if !d.on.Load() || u == nil {
		return
	}
	d.qmu.Lock()
	d.qSessions = append(d.qSessions, string(sessionKey(u.openID(), []byte(th))))
	if last {
		d.qUsers = append(d.qUsers, u.openID())
	}
	d.qmu.Unlock()
}

// pendingSession returns the file key of the session th when its removal
// is queued or being flushed, and so perhaps not on disk yet.
func (d *diskState) pendingSession(th store.TokenHash) (string, bool) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	for _, keys := range [2][]string{d.qSessions, d.flushing} {
		for _, k := range keys {
			if strings.HasSuffix(k, string(th[:])) {
				return k, true
			}
		}
	}
	return "", false
}

func (d *diskState) queuePrevKey(openid string) {
	if !d.on.Load() {
		return
	}
	d.qmu.Lock()
	d.qPrevKeys = append(d.qPrevKeys, openid)
	d.qmu.Unlock()
}

// flush writes the queued removals, a chunk per transaction, resting
// between chunks (restFactor). A failure keeps the rest for the next
// flush; the log hears of it as of a change's (noteWrite).
func (d *diskState) flush(s *sharedStore) {
	if !d.on.Load() {
		return
	}
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.qmu.Lock()
	sessions, users, prevKeys := d.qSessions, d.qUsers, d.qPrevKeys
	d.qSessions, d.qUsers, d.qPrevKeys = nil, nil, nil
	d.flushing = sessions
	d.qmu.Unlock()
	defer func() {
		d.qmu.Lock()
		d.flushing = nil
		d.qmu.Unlock()
	}()
	if len(sessions)+len(users)+len(prevKeys) == 0 {
		return
	}
	var lastChunk time.Duration
	for first := true; len(sessions)+len(users)+len(prevKeys) > 0; first = false {
		if !first {
			s.rest(lastChunk)
		}
		t0 := time.Now()
		ns, nu := min(len(sessions), flushChunk), min(len(users), flushChunk)
		np := min(len(prevKeys), flushChunk)
		// The file is held a chunk at a time, never across a rest: a
		// reload that switches files (swap) would otherwise wait for the
		// whole flush, and every login behind it.
		d.mu.RLock()
		f := d.f
		if f == nil {
			d.mu.RUnlock()
			return
		}
		err := f.j.write(s, f.db, func(w *diskWriter) error {
			var errs []error
			for _, k := range sessions[:ns] {
				errs = append(errs, w.sessionAt([]byte(k)))
			}
			for _, id := range users[:nu] {
				errs = append(errs, w.user(id))
			}
			for _, id := range prevKeys[:np] {
				errs = append(errs, w.prevKey(id))
			}
			return errors.Join(errs...)
		})
		d.mu.RUnlock()
		d.noteWrite(f.path, err)
		if err != nil {
			d.qmu.Lock()
			d.qSessions = append(d.qSessions, sessions...)
			d.qUsers = append(d.qUsers, users...)
			d.qPrevKeys = append(d.qPrevKeys, prevKeys...)
			d.qmu.Unlock()
			return
		}
		sessions, users, prevKeys = sessions[ns:], users[nu:], prevKeys[np:]
		d.qmu.Lock()
		d.flushing = sessions
		d.qmu.Unlock()
		lastChunk = time.Since(t0)
	}
}

// close writes what is queued and closes the file (the last config
// holding the store is gone: Caddy stops or the app left the config).
func (d *diskState) close(s *sharedStore) error {
	d.flush(s)
	d.mu.Lock()
	f := d.f
	d.f, d.closed = nil, true
	d.on.Store(false)
	d.mu.Unlock()
	if f == nil {
		return nil
	}
	if err := f.close(); err != nil {
		return fmt.Errorf("memory store: closing %s: %v", f.path, err)
	}
	return nil
}

// kickFold asks the folder (housekeeping.go) for a fold now.
func (d *diskState) kickFold() {
	select {
	case d.foldKick <- struct{}{}:
	default: // already asked
	}
}

// foldEvery is how often records are folded from the journal into the
// keyed buckets when nothing asks sooner (a region half full, at about
// 30,000 logins): the longer, the more changes share each page bbolt
// writes. Keys are by openid, so a fold's changes land on pages all over
// the file, and every page it writes is also in the device's next flush,
// which the journal's next fdatasync waits for. In a login storm on
// 100,000-odd sessions, 8 s instead of 2 s wrote about 45 % fewer bytes
// per login (3.4-3.8 KB against 1.9-2.1), and the storm's median ratio
// went from 0.733 to 0.764 (docs/login-storm.md). A start replays at
// most the two regions either way.
const foldEvery = 8 * time.Second

// foldRetry is how often a fold that failed is tried again.
const foldRetry = 2 * time.Second

// fold brings the persist file up to date with its journal, if that is
// due (now: every region), and logs a transition of the folds' health.
func (d *diskState) fold(now bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	f := d.f
	if f == nil || !f.j.due() {
		return
	}
	// Pressed, a fold comes before its time; but not after one that
	// failed (a full disk): each try applies the whole region again, so
	// it is tried every foldRetry, which is also how soon the store
	// recovers once there is room again.
	since := time.Since(time.Unix(0, d.lastFold.Load()))
	switch {
	case now:
	case d.foldHealth.down.Load():
		if since < foldRetry {
			return
		}
	case since < foldEvery && !f.j.pressed():
		return
	}
	var err error
	if now {
		err = f.j.foldAll(f.db)
	} else {
		err = f.j.fold(f.db)
	}
	d.lastFold.Store(time.Now().UnixNano())
	d.noteFold(f.path, err)
}
