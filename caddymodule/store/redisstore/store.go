package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// redisStore is the Store shared by every config with the same Redis
// settings and app id.
//
// Keys, under key_prefix + app id + ":" (P below):
//
//	P s:<hex sha256 of token>  string "<expiry unix ms>:<openid>", Redis TTL = session TTL
//	P u:<openid>               hash openid, unionid, session_key, phone, country_code;
//	                           TTL extended to the longest session of the user
//	P t:<openid>               set of the user's token hashes (so a revoke reaches
//	                           every token from any instance); same TTL as P u:
//	P pk:<openid>              the session key the newest login replaced, TTL = the grace
//	P idx                      sorted set of token hashes by expiry, for Count
//	P r:<key>                  a sealed login result, short TTL
type redisStore struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
	cache   *lookupCache
}

func newRedisStore(c connSettings, opts *redis.Options, appID string) *redisStore {
	return &redisStore{
		client:  redis.NewClient(opts),
		prefix:  c.prefix + appID + ":",
		timeout: c.timeout,
		cache:   newLookupCache(c.cacheTTL),
	}
}

// Destruct closes the client when the last config using it is gone.
func (s *redisStore) Destruct() error { return s.client.Close() }

func (s *redisStore) sessionKey(hexHash string) string { return s.prefix + "s:" + hexHash }
func (s *redisStore) userKey(openid string) string     { return s.prefix + "u:" + openid }
func (s *redisStore) tokensKey(openid string) string   { return s.prefix + "t:" + openid }
func (s *redisStore) prevKeyKey(openid string) string  { return s.prefix + "pk:" + openid }
func (s *redisStore) indexKey() string                 { return s.prefix + "idx" }
func (s *redisStore) resultKey(key string) string      { return s.prefix + "r:" + key }

// call bounds one Redis call by the timeout and turns its error into
// either store.ErrNotFound (redis.Nil) or a store failure.
func (s *redisStore) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := f(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return store.ErrNotFound
	default:
		return fmt.Errorf("wechat_auth redis store: %w", err)
	}
}

func (s *redisStore) CreateSession(ctx context.Context, th store.TokenHash, u store.User, ttl, keyGrace time.Duration) (time.Time, error) {
	if u.OpenID == "" {
		return time.Time{}, errors.New("redis store: empty openid")
	}
	if ttl < time.Millisecond {
		return time.Time{}, fmt.Errorf("redis store: session ttl must be at least 1ms, got %v", ttl)
	}
	now := time.Now()
	exp := now.Add(ttl).Truncate(time.Millisecond)
	hx := hex.EncodeToString(th[:])
	err := s.call(ctx, func(ctx context.Context) error {
		return createScript.Run(ctx, s.client,
			[]string{s.sessionKey(hx), s.userKey(u.OpenID), s.tokensKey(u.OpenID), s.indexKey(), s.prevKeyKey(u.OpenID)},
			hx, u.OpenID, u.UnionID, u.SessionKey, u.Phone, u.CountryCode,
			ttl.Milliseconds(), exp.UnixMilli(), now.UnixMilli(), s.prefix+"s:", keyGrace.Milliseconds(),
		).Err()
	})
	if err != nil {
		return time.Time{}, err
	}
	// Other tokens of the user cached here carry the old session_key.
	s.cache.forgetUser(u.OpenID)
	return exp, nil
}

func (s *redisStore) Lookup(ctx context.Context, th store.TokenHash) (store.Session, error) {
	if s.cache.enabled() {
		if sess, ok := s.cache.get(th); ok {
			return sess, nil
		}
	}
	return s.LookupFresh(ctx, th)
}

// LookupFresh reads the session from Redis, and caches what it read.
func (s *redisStore) LookupFresh(ctx context.Context, th store.TokenHash) (store.Session, error) {
	var gen uint64
	if s.cache.enabled() {
		gen = s.cache.generation()
	}
	var vals []string
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := lookupScript.Run(ctx, s.client, []string{s.sessionKey(hex.EncodeToString(th[:]))}, s.prefix+"u:").StringSlice()
		vals = v
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	if len(vals) != 6 {
		return store.Session{}, fmt.Errorf("wechat_auth redis store: unexpected look-up answer of %d fields", len(vals))
	}
	ms, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil {
		return store.Session{}, fmt.Errorf("wechat_auth redis store: bad session expiry: %v", err)
	}
	sess := store.Session{
		User:      store.User{OpenID: vals[1], UnionID: vals[2], SessionKey: vals[3], Phone: vals[4], CountryCode: vals[5]},
		ExpiresAt: time.UnixMilli(ms),
	}
	now := time.Now()
	if !sess.ExpiresAt.After(now) {
		return store.Session{}, store.ErrNotFound // Redis has not expired it yet
	}
	if s.cache.enabled() {
		s.cache.put(th, sess, gen, now)
	}
	return sess, nil
}

// DeleteSession deletes in Redis first and forgets the local copy after
// (and before: this instance stops honouring it even if Redis fails).
// The cache's generation keeps a look-up that read Redis before the
// delete from caching the dead session again.
func (s *redisStore) DeleteSession(ctx context.Context, th store.TokenHash) error {
	s.cache.forget(th)
	hx := hex.EncodeToString(th[:])
	err := s.call(ctx, func(ctx context.Context) error {
		return deleteScript.Run(ctx, s.client, []string{s.sessionKey(hx), s.indexKey()}, hx, s.prefix+"t:").Err()
	})
	s.cache.forget(th)
	return err
}

func (s *redisStore) RevokeUser(ctx context.Context, openid string) (int, error) {
	s.cache.forgetUser(openid)
	var n int64
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := revokeScript.Run(ctx, s.client,
			[]string{s.tokensKey(openid), s.userKey(openid), s.indexKey(), s.prevKeyKey(openid)}, s.prefix+"s:").Int64()
		n = v
		return err
	})
	s.cache.forgetUser(openid)
	return int(n), err
}

func (s *redisStore) BindPhone(ctx context.Context, openid, phone, countryCode string) error {
	var ok int64
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := bindPhoneScript.Run(ctx, s.client, []string{s.userKey(openid)}, phone, countryCode).Int64()
		ok = v
		return err
	})
	if err != nil {
		return err
	}
	s.cache.forgetUser(openid)
	if ok == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (s *redisStore) PreviousSessionKey(ctx context.Context, openid string) (string, error) {
	var key string
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := s.client.Get(ctx, s.prevKeyKey(openid)).Result()
		key = v
		return err
	})
	return key, err
}

func (s *redisStore) PutLoginResult(ctx context.Context, key string, sealed []byte, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis store: login result ttl must be at least 1ms, got %v", ttl)
	}
	return s.call(ctx, func(ctx context.Context) error {
		return s.client.Set(ctx, s.resultKey(key), sealed, ttl).Err()
	})
}

func (s *redisStore) GetLoginResult(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := s.client.Get(ctx, s.resultKey(key)).Bytes()
		b = v
		return err
	})
	return b, err
}

// Count answers from the expiry index: O(log n) plus the expired entries
// it drops. Sessions removed behind the store's back (a maxmemory
// eviction policy, a manual DEL) are counted until they expire.
func (s *redisStore) Count(ctx context.Context) (int, error) {
	var n int64
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := countScript.Run(ctx, s.client, []string{s.indexKey()}, time.Now().UnixMilli()).Int64()
		n = v
		return err
	})
	return int(n), err
}

// Interface guards
var (
	_ store.Store       = (*redisStore)(nil)
	_ store.FreshLooker = (*redisStore)(nil)
	_ caddy.Destructor  = (*redisStore)(nil)
)
