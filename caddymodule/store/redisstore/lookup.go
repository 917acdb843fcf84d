package redisstore

import (
	"context"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// Lookup answers from the local cache, or with one GET. Concurrent
// misses of one token share one read, unless an invalidation came
// between them (the generation is part of the flight's key).
func (s *sharedStore) Lookup(ctx context.Context, th store.TokenHash) (store.Session, error) {
	if !s.cache.enabled() {
		return s.read(ctx, th)
	}
	if sess, ok := s.cache.get(th, time.Now().UnixNano()); ok {
		return sess, nil
	}
	gen := s.cache.generation(th)
	var key [len(th) + 8]byte
	copy(key[:], th[:])
	for i := range 8 {
		key[len(th)+i] = byte(gen >> (8 * i))
	}
	v, err, _ := s.flights.Do(string(key[:]), func() (any, error) {
		// The first caller's cancellation must not fail the others. The
		// entry's age counts from before the read: cache_ttl bounds how
		// long after Redis said so a token is honoured, however slow
		// the answer was.
		start := time.Now()
		sess, err := s.read(context.WithoutCancel(ctx), th)
		if err == nil {
			s.cache.put(th, sess, gen, start)
		}
		return sess, err
	})
	if err != nil {
		return store.Session{}, err
	}
	return v.(store.Session), nil
}

// read is a look-up in Redis: one GET of the session copy.
func (s *sharedStore) read(ctx context.Context, th store.TokenHash) (store.Session, error) {
	var v string
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		v, err = s.client.Get(ctx, s.sessionKey(hexOf(th))).Result()
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	ver, sess, err := decodeCopy(v)
	if err != nil || ver == provisional || !sess.ExpiresAt.After(time.Now()) {
		// Not a session this store wrote (one of an earlier layout,
		// say), half written, or expired and not yet dropped by Redis:
		// not authenticated, and the client logs in again.
		return store.Session{}, store.ErrNotFound
	}
	return sess, nil
}

// LookupFresh reads the session and then the user record itself (two
// round trips), which is the authority when a copy is behind (a change
// that failed half way), and caches what it read.
func (s *sharedStore) LookupFresh(ctx context.Context, th store.TokenHash) (store.Session, error) {
	gen := s.cache.generation(th)
	start := time.Now()
	sess, err := s.read(ctx, th)
	if err != nil {
		return store.Session{}, err
	}
	var vals []any
	err = s.call(ctx, func(ctx context.Context) error {
		var err error
		vals, err = s.client.HMGet(ctx, s.userKey(sess.User.OpenID), "openid", "unionid", "session_key", "phone", "country_code").Result()
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	var f [5]string
	for i, v := range vals {
		f[i], _ = v.(string)
	}
	if f[0] == "" {
		return store.Session{}, store.ErrNotFound // revoked meanwhile
	}
	sess.User = store.User{OpenID: f[0], UnionID: f[1], SessionKey: f[2], Phone: f[3], CountryCode: f[4]}
	s.cache.put(th, sess, gen, start)
	return sess, nil
}
