package memorystore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/patrickmn/go-cache"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// numShards is how many go-caches the sessions are spread over, by the
// first byte of the token hash (uniform: it is SHA-256). Each has its own
// lock, so a sweep or a scan holds one 1/256th of the sessions at a time:
// at 1M sessions about 4,000, some 50-100 µs of work. Lookup never waits
// on the others.
const numShards = 256

// sharedStore is the Store shared by every config of one app.
//
// Sessions live in go-caches keyed by the 32 bytes of the token hash,
// each entry holding the *memUser and expiring with the session. There is
// no per-session struct: a pointer in an interface costs no allocation.
//
// Lookup reads one shard under its read lock and an atomic pointer,
// nothing else: no other lock, no disk. Everything that visits many
// sessions (the expiry sweep, the session limit) runs in the housekeeping
// goroutine, one shard at a time (housekeeping.go); what must outlive a
// restart is written to the persist file before the call that changed it
// returns (persist.go, writer.go), which reads memory through the methods
// of memview.go only.
//
// Lock order. A lock may be taken while holding those above it, never
// one below; every lock not listed as nested is taken with none held.
//
//  1. the usage pool's entry of the app (caddy.UsagePool): held by
//     LoadOrNew while it builds the store, so openAtStart (swap, load)
//     runs under it.
//  2. cfgMu: held by hold and release for the whole of apply, so a
//     reload's usePersist (identify, replaceFile, dump, swap) runs under
//     it. Two reloads never switch files at once.
//  3. revoking: read-held by RevokeUser across its disk write; DeleteSession
//     takes it alone, to wait for the revokes still writing. Beside it
//     (neither is taken under the other), a lock of turns: held by
//     CreateSession, BindPhone and ReplaceSessionKey across their change
//     in memory and their disk write, and the undo of a failed one
//     (undo.go).
//  4. disk.flushMu: held by flush across all its chunks, rests included.
//  5. disk.mu: read-held by each write, each flush chunk and each fold,
//     write-held by swap and close (which so wait for the writes in
//     flight to the file they take away).
//  6. the journal's foldMu (fold.go): one fold at a time; held across
//     the fold's bbolt transaction, never by a write.
//  7. the journal's mu (journal.go): held by each write while the disk
//     writer reads memory and its record is appended, so that records
//     are in the order of the memory they read (mu and go-cache's are
//     taken under it); and briefly by a sync round and a fold. Never
//     held across a write to the file, an fdatasync or a transaction.
//     Then bbolt's own: the file's flock (other processes; openBolt
//     gives up after lockWait), and the one write transaction at a time
//     (a fold, a dump).
//  8. mu: held by CreateSession, BindPhone, ReplaceSessionKey and
//     RevokeUser only for the change in memory (and the undo of a change
//     whose write failed), released before their disk write (a login
//     never waits for the disk with mu held); by the OnEvicted hooks,
//     Count and the trim's estimate with none held; by the read methods
//     of memview.go under the journal's lock (or in a dump's transaction).
//  9. go-cache's: a shard's, prevKeys', results' (each its own).
//     CreateSession sets a shard and the previous key with mu held;
//     RevokeUser, ReplaceSessionKey and the undos set or delete the
//     previous key with it (an undo deletes a session with mu not held:
//     the hook takes it). go-cache runs OnEvicted after releasing its own
//     lock, so the hooks (which take mu and disk.qmu) never run under one.
//  10. disk.qmu: the removal queue, a leaf; taken under mu when a previous
//     key deleted with mu held is queued by its hook.
type sharedStore struct {
	appID       string
	maxSessions atomic.Int64
	logger      atomic.Pointer[zap.Logger]

	shards   [numShards]*cache.Cache // string(store.TokenHash) → *memUser
	size     atomic.Int64            // entries in the shards, live, expired or revoked
	results  *cache.Cache            // login code key → sealed answer (not persisted: worth minutes)
	prevKeys *cache.Cache            // openid → the session key its newest login replaced, for the grace

	mu      sync.Mutex          // guards users, revoked and every memUser's n and exp
	users   map[string]*memUser // by openid
	revoked int                 // entries of revoked users not yet removed from the shards

	// revoking is read-held by each RevokeUser from its change in memory
	// until its write is on disk: a logout that finds its session revoked
	// waits for that write before it answers.
	revoking sync.RWMutex

	turns userLocks // the changes of a user's record take turns (undo.go)

	disk diskState // the persist file, if any (persist.go)

	cfgMu   sync.Mutex // guards holders
	holders []*holder  // the configs using the store, oldest first (module.go)

	trimKick  chan struct{}      // asks the housekeeper to enforce maxSessions
	settleReq chan chan struct{} // asks it for a full round now (tests)
	stop      chan struct{}
	done      chan struct{} // the housekeeper has returned
	foldDone  chan struct{} // the folder has returned
}

// newSharedStore makes an empty store. The caller loads a persist file
// into it, if there is one, before starting the housekeeper (start).
func newSharedStore(appID string, maxSessions int, logger *zap.Logger) *sharedStore {
	s := &sharedStore{
		appID:     appID,
		results:   cache.New(cache.NoExpiration, 0),
		prevKeys:  cache.New(cache.NoExpiration, 0),
		users:     make(map[string]*memUser),
		trimKick:  make(chan struct{}, 1),
		settleReq: make(chan chan struct{}),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		foldDone:  make(chan struct{}),
	}
	s.disk.s = s
	s.turns.seed = maphash.MakeSeed()
	s.disk.foldKick = make(chan struct{}, 1)
	s.maxSessions.Store(int64(maxSessions))
	s.logger.Store(logger)
	s.setShards(nil)
	s.prevKeys.OnEvicted(s.prevKeyRemoved)
	return s
}

// setShards makes the shards from the items of each (nil: empty). The
// caches get no janitor of their own (that goroutine ends only when a
// finalizer runs): the housekeeper sweeps them.
func (s *sharedStore) setShards(items *[numShards]map[string]cache.Item) {
	n := 0
	for i := range s.shards {
		m := map[string]cache.Item(nil)
		if items != nil {
			m = items[i]
		}
		if m == nil {
			m = make(map[string]cache.Item)
		}
		n += len(m)
		s.shards[i] = cache.NewFrom(cache.NoExpiration, 0, m)
		s.shards[i].OnEvicted(s.sessionRemoved)
	}
	s.size.Store(int64(n))
}

func (s *sharedStore) shard(th *store.TokenHash) *cache.Cache { return s.shards[th[0]] }

// Destruct is called by the usage pool when the last config holding the
// store is cleaned up: stop the housekeeper, write what it had not yet
// written, and close the persist file.
func (s *sharedStore) Destruct() error {
	close(s.stop)
	<-s.done
	<-s.foldDone
	return s.disk.close(s)
}

// sessionRemoved is go-cache's OnEvicted hook: it runs after every
// deletion of a session (expiry, logout, the session limit), outside the
// shard's lock. It keeps the counters, drops the user record with its
// last session, and queues the removal for the persist file.
func (s *sharedStore) sessionRemoved(key string, v any) {
	rec := v.(*memUser)
	s.size.Add(-1)
	last := false
	s.mu.Lock()
	rec.n--
	u := rec.u.Load()
	switch {
	case u == nil:
		s.revoked--
	case rec.n == 0 && s.users[u.openID()] == rec:
		delete(s.users, u.openID())
		last = true
	}
	s.mu.Unlock()
	s.disk.queueRemoved(key, u, last)
}

// prevKeyRemoved is the OnEvicted hook of the previous keys.
func (s *sharedStore) prevKeyRemoved(openid string, _ any) { s.disk.queuePrevKey(openid) }

func (s *sharedStore) CreateSession(_ context.Context, th store.TokenHash, in store.User, ttl, keyGrace time.Duration) (time.Time, error) {
	if in.OpenID == "" {
		return time.Time{}, errors.New("memory store: empty openid")
	}
	if ttl <= 0 {
		return time.Time{}, fmt.Errorf("memory store: session ttl must be positive, got %v", ttl)
	}
	key := string(th[:])
	sh := s.shard(&th)
	// go-cache overwrites without calling OnEvicted; a reused hash must
	// release its old user first. (Hashes of fresh random tokens are
	// never created twice at once, so no lock is needed around the two;
	// nor is this undone if the write fails.)
	sh.Delete(key)

	// The user's changes take turns (undo.go): an undo of this one, if
	// its write fails, then puts back nothing of another's.
	l := s.turns.of(in.OpenID)
	l.Lock()
	defer l.Unlock()

	s.mu.Lock()
	now := time.Now()
	rec := s.users[in.OpenID]
	undo := createUndo{th: th, openid: in.OpenID, was: rec, prevKey: s.prevKeyState(in.OpenID)}
	u := in
	if rec == nil || rec.expired(now) {
		// New, or every session of the user has expired and the sweep
		// has not reached them yet: start afresh, as Redis would.
		rec = &memUser{}
		s.prevKeys.Delete(in.OpenID)
	} else {
		undo.before, undo.exp = rec.u.Load(), rec.exp
		old := undo.before.user()
		u.UnionID = cmp.Or(u.UnionID, old.UnionID)
		if u.Phone == "" {
			u.Phone, u.CountryCode = old.Phone, old.CountryCode
		}
		if old.SessionKey != u.SessionKey {
			// A rotation: keep the replaced key for data sealed just
			// before it (WeChat's getPhoneNumber pitfall); the one before
			// that is gone for good.
			if keyGrace > 0 {
				s.prevKeys.Set(in.OpenID, old.SessionKey, keyGrace)
			} else {
				s.prevKeys.Delete(in.OpenID)
			}
		}
	}
	p, err := packUser(u)
	if err != nil {
		s.mu.Unlock()
		return time.Time{}, err
	}
	s.storeUser(rec, p)
	undo.rec, undo.p = rec, p
	sh.Set(key, rec, ttl)
	s.size.Add(1)
	// Read back go-cache's own expiry, so that Lookup reports exactly the
	// time returned here.
	_, exp, ok := sh.GetWithExpiration(key)
	if !ok {
		exp = now.Add(ttl)
	}
	rec.n++
	rec.exp = max(rec.exp, unixCeil(exp))
	s.mu.Unlock()

	// On disk before it is answered: the session, its user record (a new
	// session key, unionid) and the previous key.
	if err := s.disk.write(func(w *diskWriter) error {
		return errors.Join(w.user(in.OpenID), w.session(in.OpenID, th), w.prevKey(in.OpenID))
	}); err != nil {
		s.undoCreate(undo)
		return time.Time{}, err
	}
	if s.size.Load() > s.maxSessions.Load() {
		s.kickTrim()
	}
	return exp, nil
}

// Lookup is the hot path: one read-locked map look-up in one shard and an
// atomic load, no allocation (string(th[:]) is 32 bytes and does not
// escape, so the compiler keeps it on the stack), no disk.
func (s *sharedStore) Lookup(_ context.Context, th store.TokenHash) (store.Session, error) {
	sh := s.shard(&th)
	v, exp, ok := sh.GetWithExpiration(string(th[:]))
	if !ok {
		return store.Session{}, store.ErrNotFound
	}
	u := v.(*memUser).u.Load()
	if u == nil {
		sh.Delete(string(th[:])) // revoked; drop it now it is seen
		return store.Session{}, store.ErrNotFound
	}
	return store.Session{User: u.user(), ExpiresAt: exp}, nil
}

func (s *sharedStore) DeleteSession(_ context.Context, th store.TokenHash) error {
	sh := s.shard(&th)
	v, found := sh.Get(string(th[:]))
	sh.Delete(string(th[:]))
	if !found {
		// It left memory a moment ago (the session limit, expiry, a
		// logout beside this one, or an earlier logout whose write
		// failed): its removal waits in the background queue. The answer
		// promises it is gone for good, so it goes to disk first.
		if k, ok := s.disk.pendingSession(th); ok {
			return s.disk.write(func(w *diskWriter) error { return w.sessionAt([]byte(k)) })
		}
		return nil
	}
	u := v.(*memUser).u.Load()
	if u == nil {
		// Revoked: the revoke deletes it from the file with its user.
		// Taking the lock waits for the revokes still writing.
		s.revoking.Lock()
		s.revoking.Unlock()
		return nil
	}
	return s.disk.write(func(w *diskWriter) error { return w.session(u.openID(), th) })
}

// RevokeUser kills every session of openid at once by retiring the user
// record they share. Their cache entries are not found one by one (that
// would need a scan): Lookup drops each when it is next used, and expiry
// or the session limit the rest; until then Count leaves them out. The
// count returned includes sessions that expired less than a sweep ago.
//
// In the persist file the user's record goes, with all its sessions,
// even when memory has none of them: a revoke retried after a failed
// write, or of a user whose sessions left memory just now, still reaches
// the disk before it is answered.
func (s *sharedStore) RevokeUser(_ context.Context, openid string) (int, error) {
	s.revoking.RLock()
	defer s.revoking.RUnlock()
	s.mu.Lock()
	rec := s.users[openid]
	n := 0
	if rec != nil {
		delete(s.users, openid)
		s.prevKeys.Delete(openid)
		rec.u.Store(nil) // from here on, Lookup of any of its tokens fails
		n = int(rec.n)
		s.revoked += n
	}
	s.mu.Unlock()
	if err := s.disk.write(func(w *diskWriter) error { return w.revoked(openid) }); err != nil {
		return 0, err
	}
	return n, nil
}

// User reads the record every session of the user shares, as BindPhone
// finds it: gone with the user's last session, or at a revoke.
func (s *sharedStore) User(_ context.Context, openid string) (store.User, error) {
	s.mu.Lock()
	rec := s.users[openid]
	if rec == nil || rec.expired(time.Now()) {
		s.mu.Unlock()
		return store.User{}, store.ErrNotFound
	}
	u := rec.u.Load()
	s.mu.Unlock()
	if u == nil {
		return store.User{}, store.ErrNotFound
	}
	return u.user(), nil
}

// ReplaceSessionKey changes the record every session of the user shares,
// as BindPhone does, and writes it with the previous key's removal. A
// replacement whose write fails is answered 503 and undone: the old key
// and the previous key stay, as on disk.
func (s *sharedStore) ReplaceSessionKey(_ context.Context, openid, oldKey, newKey string) (bool, error) {
	l := s.turns.of(openid)
	l.Lock()
	defer l.Unlock()

	s.mu.Lock()
	rec := s.users[openid]
	if rec == nil || rec.expired(time.Now()) {
		s.mu.Unlock()
		return false, store.ErrNotFound
	}
	before := rec.u.Load()
	u := before.user()
	if u.SessionKey != oldKey {
		s.mu.Unlock()
		return false, nil
	}
	u.SessionKey = newKey
	prevKey := s.prevKeyState(openid)
	p, err := packUser(u)
	if err == nil {
		s.storeUser(rec, p)
		s.prevKeys.Delete(openid)
	}
	s.mu.Unlock()
	if err != nil {
		return false, err
	}
	if err := s.disk.write(func(w *diskWriter) error {
		return errors.Join(w.user(openid), w.prevKey(openid))
	}); err != nil {
		s.undoReplaceKey(rec, p, before, prevKey)
		return false, err
	}
	return true, nil
}

func (s *sharedStore) PreviousSessionKey(_ context.Context, openid string) (string, error) {
	v, ok := s.prevKeys.Get(openid)
	if !ok {
		return "", store.ErrNotFound
	}
	return v.(string), nil
}

func (s *sharedStore) PutLoginResult(_ context.Context, key string, sealed []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory store: login result ttl must be positive, got %v", ttl)
	}
	s.results.Set(key, bytes.Clone(sealed), ttl)
	return nil
}

func (s *sharedStore) GetLoginResult(_ context.Context, key string) ([]byte, error) {
	v, ok := s.results.Get(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v.([]byte)), nil
}

// Count reads two counters; it touches no shard. Sessions that expired
// since the sweep last passed their shard (at most a minute ago) are still
// counted.
func (s *sharedStore) Count(context.Context) (int, error) {
	s.mu.Lock()
	revoked := s.revoked
	s.mu.Unlock()
	return max(0, int(s.size.Load())-revoked), nil
}

// Interface guards
var (
	_ store.Store      = (*sharedStore)(nil)
	_ caddy.Destructor = (*sharedStore)(nil)
)
