package memorystore

import (
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/patrickmn/go-cache"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// A change whose write fails is answered 503 store_unavailable, a promise
// that it was not made: it is then undone in memory, so that memory holds
// what the file holds (the journal never lets a failed record land later,
// journal.go). A login, a phone binding and a key replacement each change
// the user record every session shares, so each is undone by putting
// back what it changed, then writing it again: a write of its own in the
// meantime (the background queue's) may have read the change.

// numUserLocks is how many locks the changes of user records are spread
// over, by openid. Each is held across a disk write, and logins take
// them: under a login storm, logins of different users that share a lock
// wait for each other's sync, so there are enough of them (8 KiB) that
// few do.
const numUserLocks = 1024

// userLocks makes the changes of each user's record (CreateSession,
// BindPhone, ReplaceSessionKey) take turns, each from its change in
// memory until its write is done or undone. What an undo puts back is
// then never the half of another change still writing, which may fail
// too. A revoke takes none: it retires the record whatever is writing.
type userLocks struct {
	seed  maphash.Seed // spreads the openids over the locks
	locks [numUserLocks]sync.Mutex
}

func (b *userLocks) of(openid string) *sync.Mutex {
	return &b.locks[maphash.String(b.seed, openid)%numUserLocks]
}

// prevKeyState is the previous key of a user as memory held it before a
// change, to put back if the change is undone.
type prevKeyState struct {
	key string
	exp time.Time // zero: no expiry
	ok  bool
}

// prevKeyState reads the previous key of openid. The caller holds s.mu.
func (s *sharedStore) prevKeyState(openid string) prevKeyState {
	v, exp, ok := s.prevKeys.GetWithExpiration(openid)
	if !ok {
		return prevKeyState{}
	}
	return prevKeyState{v.(string), exp, true}
}

// putBackPrevKey makes p the previous key of openid again (gone, if its
// grace ended meanwhile). The caller holds s.mu.
func (s *sharedStore) putBackPrevKey(openid string, p prevKeyState) {
	if !p.ok {
		s.prevKeys.Delete(openid)
		return
	}
	d := cache.NoExpiration
	if !p.exp.IsZero() {
		if d = time.Until(p.exp); d <= 0 {
			s.prevKeys.Delete(openid)
			return
		}
	}
	s.prevKeys.Set(openid, p.key, d)
}

// createUndo is what CreateSession changed, to take back if its write
// fails.
type createUndo struct {
	th      store.TokenHash
	openid  string
	was     *memUser    // the user's record before, if any (live or expired)
	rec     *memUser    // the record the session points to: was when it was live
	before  *packedUser // rec's user before (rec == was), nil for a new record
	p       *packedUser // rec's user as the login stored it
	exp     uint32      // rec.exp before
	prevKey prevKeyState
}

// undoCreate takes back a login whose write failed: its session, and
// what it changed of the user (session key, unionid, previous key), or
// the record it made. The caller holds the user's lock (userLocks), so no
// other login, binding or key replacement of the user changed it since;
// a revoke may have, and then stands.
func (s *sharedStore) undoCreate(c createUndo) {
	// The hook (sessionRemoved) keeps the counters and drops a record
	// the login made, with its only session. (Nobody else holds the
	// token: it was never answered.)
	s.shard(&c.th).Delete(string(c.th[:]))

	s.mu.Lock()
	if c.rec == c.was {
		if c.rec.u.Load() == c.p && s.users[c.openid] == c.rec {
			s.storeUser(c.rec, c.before)
			c.rec.exp = c.exp // (no other login of the user raised it: the lock)
			s.putBackPrevKey(c.openid, c.prevKey)
		}
	} else if c.was != nil && s.users[c.openid] == nil {
		// The login replaced a record whose sessions had all expired
		// and not been swept yet: it is put back for the sweep to end
		// as it would have (with the file's copy).
		if u := c.was.u.Load(); u != nil {
			s.storeUser(c.was, u)
			s.putBackPrevKey(c.openid, c.prevKey)
		}
	}
	s.mu.Unlock()
	s.rewriteUser(c.openid, &c.th)
}

// undoReplaceKey takes back a key replacement of rec whose write failed:
// the key it replaced, and the previous key it dropped. The caller holds
// the user's lock.
func (s *sharedStore) undoReplaceKey(rec *memUser, p, before *packedUser, prevKey prevKeyState) {
	openid := before.openID()
	s.mu.Lock()
	if rec.u.Load() == p && s.users[openid] == rec {
		s.storeUser(rec, before)
		s.putBackPrevKey(openid, prevKey)
	}
	s.mu.Unlock()
	s.rewriteUser(openid, nil)
}

// rewriteUser writes the user record of openid, its previous key and the
// session th (when not nil) as memory now holds them, after an undo. Its
// error is left out: the change is answered with its own, and a failing
// disk is in the log already (diskhealth.go).
func (s *sharedStore) rewriteUser(openid string, th *store.TokenHash) {
	_ = s.disk.write(func(w *diskWriter) error {
		errs := []error{w.user(openid), w.prevKey(openid)}
		if th != nil {
			errs = append(errs, w.session(openid, *th))
		}
		return errors.Join(errs...)
	})
}
