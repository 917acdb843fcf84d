package memorystore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/patrickmn/go-cache"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// memoryStore is the Store shared by every config of one app.
//
// Sessions live in a go-cache keyed by the 32 bytes of the token hash,
// each entry holding the *memUser and expiring with the session. There is
// no per-session struct: a pointer in an interface costs no allocation.
// A session of its own user costs about 290 bytes at 1M sessions.
type memoryStore struct {
	appID       string
	snapshot    string
	maxSessions atomic.Int64
	logger      atomic.Pointer[zap.Logger]

	sessions *cache.Cache // string(store.TokenHash) → *memUser
	results  *cache.Cache // login code key → sealed answer (not snapshotted: worth minutes)
	prevKeys *cache.Cache // openid → the session key its newest login replaced, for the grace

	mu      sync.Mutex          // guards users, revoked and every memUser's n and exp
	users   map[string]*memUser // by openid
	revoked int                 // entries of revoked users not yet removed from sessions

	trimMu sync.Mutex // one scan for the session limit at a time
	snapMu sync.Mutex // one snapshot writer at a time
	stop   chan struct{}
	done   chan struct{}
}

// newMemoryStore makes the store, restores the snapshot if there is one,
// and starts the janitor. The caches get no janitor of their own (that
// goroutine ends only when a finalizer runs): ours stops in Destruct.
func newMemoryStore(appID, snapshot string, maxSessions int, logger *zap.Logger) *memoryStore {
	s := &memoryStore{
		appID:    appID,
		snapshot: snapshot,
		results:  cache.New(cache.NoExpiration, 0),
		prevKeys: cache.New(cache.NoExpiration, 0),
		users:    make(map[string]*memUser),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.maxSessions.Store(int64(maxSessions))
	s.logger.Store(logger)
	items := make(map[string]cache.Item)
	if snapshot != "" {
		s.loadSnapshot(items)
	}
	s.sessions = cache.NewFrom(cache.NoExpiration, 0, items)
	s.sessions.OnEvicted(s.sessionRemoved)
	s.trimToLimit() // a smaller max_sessions than before the restart
	go s.janitor()
	return s
}

// janitor drops expired sessions, login results and previous keys every
// minute (the user records go with their last session, in
// sessionRemoved) and saves the snapshot.
func (s *memoryStore) janitor() {
	defer close(s.done)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sessions.DeleteExpired()
			s.results.DeleteExpired()
			s.prevKeys.DeleteExpired()
			s.save()
		}
	}
}

// Destruct is called by the usage pool when the last config holding the
// store is cleaned up: stop the janitor and save the sessions.
func (s *memoryStore) Destruct() error {
	close(s.stop)
	<-s.done
	return s.save()
}

// sessionRemoved is go-cache's OnEvicted hook: it runs after every
// deletion of a session (expiry, logout, the session limit), outside the
// cache's lock. It keeps
// the user's count and drops the user record with its last session.
func (s *memoryStore) sessionRemoved(_ string, v any) {
	rec := v.(*memUser)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.n--
	u := rec.u.Load()
	switch {
	case u == nil:
		s.revoked--
	case rec.n == 0 && s.users[u.openID()] == rec:
		delete(s.users, u.openID())
	}
}

func (s *memoryStore) CreateSession(_ context.Context, th store.TokenHash, in store.User, ttl, keyGrace time.Duration) (time.Time, error) {
	if in.OpenID == "" {
		return time.Time{}, errors.New("memory store: empty openid")
	}
	if ttl <= 0 {
		return time.Time{}, fmt.Errorf("memory store: session ttl must be positive, got %v", ttl)
	}
	key := string(th[:])
	// go-cache overwrites without calling OnEvicted; a reused hash must
	// release its old user first. (Hashes of fresh random tokens are
	// never created twice at once, so no lock is needed around the two.)
	s.sessions.Delete(key)

	s.mu.Lock()
	now := time.Now()
	rec := s.users[in.OpenID]
	u := in
	if rec == nil || rec.expired(now) {
		// New, or every session of the user has expired and the janitor
		// has not run yet: start afresh, as Redis would.
		rec = &memUser{}
		s.prevKeys.Delete(in.OpenID)
	} else {
		old := rec.u.Load().user()
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
	s.sessions.Set(key, rec, ttl)
	// Read back go-cache's own expiry, so that Lookup reports exactly the
	// time returned here.
	_, exp, ok := s.sessions.GetWithExpiration(key)
	if !ok {
		exp = now.Add(ttl)
	}
	rec.n++
	rec.exp = max(rec.exp, unixCeil(exp))
	s.mu.Unlock()

	s.trimToLimit()
	return exp, nil
}

// trimToLimit drops the oldest sessions while there are more than
// maxSessions.
// Under a fixed TTL the oldest session is the one that expires first, so
// go-cache's expiries give the order. A FIFO of token hashes would cost 32
// bytes per session; instead the (rare) scan copies the entries, finds
// the cut-off expiry by sorting the expiries and removes a batch of 1/128
// of the limit beyond what is needed, so that at 1M sessions it runs once
// per ~8k logins (and takes ~0.4 s, most of it go-cache's Items copy).
func (s *memoryStore) trimToLimit() {
	limit := int(s.maxSessions.Load())
	if s.sessions.ItemCount() <= limit || !s.trimMu.TryLock() {
		return // under the limit, or another caller is already at it
	}
	defer s.trimMu.Unlock()
	s.sessions.DeleteExpired()
	items := s.sessions.Items()
	exps := make([]int64, 0, len(items))
	for k, it := range items {
		if it.Object.(*memUser).u.Load() == nil {
			s.sessions.Delete(k) // revoked: dead already
			delete(items, k)
			continue
		}
		exps = append(exps, it.Expiration)
	}
	if len(exps) <= limit {
		return
	}
	n := min(len(exps), len(exps)-limit+limit/128)
	slices.Sort(exps)
	for k, it := range items {
		if it.Expiration <= exps[n-1] { // (a tie at the cut-off goes too)
			s.sessions.Delete(k)
		}
	}
}

// Lookup is the hot path: one read-locked map look-up and an atomic load,
// no allocation (string(th[:]) is 32 bytes and does not escape, so the
// compiler keeps it on the stack).
func (s *memoryStore) Lookup(_ context.Context, th store.TokenHash) (store.Session, error) {
	v, exp, ok := s.sessions.GetWithExpiration(string(th[:]))
	if !ok {
		return store.Session{}, store.ErrNotFound
	}
	u := v.(*memUser).u.Load()
	if u == nil {
		s.sessions.Delete(string(th[:])) // revoked; drop it now it is seen
		return store.Session{}, store.ErrNotFound
	}
	return store.Session{User: u.user(), ExpiresAt: exp}, nil
}

func (s *memoryStore) DeleteSession(_ context.Context, th store.TokenHash) error {
	s.sessions.Delete(string(th[:]))
	return nil
}

// RevokeUser kills every session of openid at once by retiring the user
// record they share. Their cache entries are not found one by one (that
// would need a scan): Lookup drops each when it is next used, and expiry
// or eviction the rest; until then Count leaves them out.
func (s *memoryStore) RevokeUser(_ context.Context, openid string) (int, error) {
	s.sessions.DeleteExpired() // so that the count returned is of live sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.users[openid]
	if rec == nil {
		return 0, nil
	}
	delete(s.users, openid)
	s.prevKeys.Delete(openid)
	rec.u.Store(nil) // from here on, Lookup of any of its tokens fails
	s.revoked += int(rec.n)
	return int(rec.n), nil
}

func (s *memoryStore) BindPhone(_ context.Context, openid, phone, countryCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.users[openid]
	if rec == nil || rec.expired(time.Now()) {
		return store.ErrNotFound
	}
	u := rec.u.Load().user()
	u.Phone, u.CountryCode = phone, countryCode
	p, err := packUser(u)
	if err != nil {
		return err
	}
	s.storeUser(rec, p)
	return nil
}

func (s *memoryStore) PreviousSessionKey(_ context.Context, openid string) (string, error) {
	v, ok := s.prevKeys.Get(openid)
	if !ok {
		return "", store.ErrNotFound
	}
	return v.(string), nil
}

func (s *memoryStore) PutLoginResult(_ context.Context, key string, sealed []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory store: login result ttl must be positive, got %v", ttl)
	}
	s.results.Set(key, bytes.Clone(sealed), ttl)
	return nil
}

func (s *memoryStore) GetLoginResult(_ context.Context, key string) ([]byte, error) {
	v, ok := s.results.Get(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v.([]byte)), nil
}

// Count sweeps expired sessions first, since go-cache's ItemCount counts
// them until they are deleted: O(sessions) under the cache lock (10-20 ms
// at 1M). It serves a metrics gauge and the admin stats, not requests.
func (s *memoryStore) Count(context.Context) (int, error) {
	s.sessions.DeleteExpired()
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(0, s.sessions.ItemCount()-s.revoked), nil
}

// Interface guards
var (
	_ store.Store      = (*memoryStore)(nil)
	_ caddy.Destructor = (*memoryStore)(nil)
)
