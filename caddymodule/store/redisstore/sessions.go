package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// CreateSession is a login, in four steps: (1) the session copy is
// created, provisional (never an answer: the token is not handed out
// yet); (2) the user's script upserts the record, bumps its version when
// it changed, indexes the token and answers the user's other tokens; (3)
// every copy of the user is rewritten at that version, never over a newer
// one and never recreated once deleted; (4) the change is announced. A
// revocation running meanwhile can find the token in the user's index
// only after (2), when the copy exists already (1), so it deletes the
// copy, and (3) cannot bring it back.
func (s *sharedStore) CreateSession(ctx context.Context, th store.TokenHash, u store.User, ttl, keyGrace time.Duration) (time.Time, error) {
	if u.OpenID == "" {
		return time.Time{}, errors.New("redis store: empty openid")
	}
	if ttl < time.Millisecond {
		return time.Time{}, fmt.Errorf("redis store: session ttl must be at least 1ms, got %v", ttl)
	}
	if err := checkFields(u.OpenID, u.UnionID, u.SessionKey, u.Phone, u.CountryCode); err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	exp := now.Add(ttl).Truncate(time.Millisecond)
	hx := hexOf(th)
	sk := s.sessionKey(hx)

	// (1) The provisional copy, then (2) the user's script.
	var user *redis.Cmd
	err := s.inOrder(ctx,
		func(p redis.Pipeliner) {
			p.Set(ctx, sk, encodeCopy(provisional, exp, store.User{OpenID: u.OpenID}), ttl)
		},
		func(p redis.Pipeliner) {
			user = createUserScript.Eval(ctx, p, s.userKeys(u.OpenID),
				u.OpenID, u.UnionID, u.SessionKey, u.Phone, u.CountryCode,
				hx, exp.UnixMilli(), now.UnixMilli(), keyGrace.Milliseconds())
		})
	if err != nil {
		return time.Time{}, err
	}
	rec, err := parseUserAnswer(user)
	if err != nil {
		return time.Time{}, s.failure(err)
	}

	// (3) Every copy at the record's version, (4) the announcement.
	copies := s.copyKeys(rec)
	written := append([]string{sk, s.userKey(u.OpenID), s.indexKey()}, copies...)
	err = s.commit(ctx, written,
		func(p redis.Pipeliner) {
			setCopyScript.Eval(ctx, p, []string{sk}, rec.ver, encodeCopy(rec.ver, exp, rec.user))
			s.rewriteCopies(ctx, p, rec, copies)
			p.ZAdd(ctx, s.indexKey(), redis.Z{Score: float64(exp.UnixMilli()), Member: hx})
			p.ZRemRangeByScore(ctx, s.indexKey(), "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		},
		func(p redis.Pipeliner) {
			if rec.changed && len(rec.tokens) > 0 {
				p.Publish(ctx, s.channel, "u"+u.OpenID)
			}
		})
	if rec.changed {
		// Other tokens of the user cached here carry the old record.
		s.cache.forgetUser(u.OpenID)
	}
	if err != nil {
		return time.Time{}, err
	}
	// A revocation that deleted the copy between (2) and (3) came after
	// the login, which stands revoked, as it would had it come a moment
	// later.
	return exp, nil
}

// DeleteSession is a logout: the copy is deleted and announced in one
// script, then dropped from idx and, by the user's script, from the
// user's index, with the user record when it was the last live session
// (logoutEndScript: a login racing it keeps its record). It deletes in
// Redis first, forgetting the local copy before and after: this gateway stops honouring the token
// even when Redis fails, and the cache's generation keeps a look-up that
// read Redis before the delete from caching the dead session again.
func (s *sharedStore) DeleteSession(ctx context.Context, th store.TokenHash) error {
	s.cache.forget(th)
	defer s.cache.forget(th)
	hx := hexOf(th)
	sk := s.sessionKey(hx)
	var v string
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		v, err = deleteScript.Run(ctx, s.client, []string{sk}, s.channel, "s"+hx).Text()
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		// Gone already; it may still be in idx.
		return s.batch(ctx, func(p redis.Pipeliner) { p.ZRem(ctx, s.indexKey(), hx) })
	}
	if err != nil {
		return err
	}
	_, sess, err := decodeCopy(v)
	if err != nil {
		return nil // not one of ours: nothing indexes it
	}
	openid := sess.User.OpenID
	return s.commit(ctx, []string{sk, s.tokensKey(openid), s.indexKey()}, func(p redis.Pipeliner) {
		logoutEndScript.Eval(ctx, p, s.userKeys(openid), time.Now().UnixMilli(), hx)
		p.ZRem(ctx, s.indexKey(), hx)
	})
}

// Count answers from the expiry index: O(log n) plus the expired entries
// it drops. Sessions removed behind the store's back (a maxmemory
// eviction policy, a manual DEL) are counted until they expire.
func (s *sharedStore) Count(ctx context.Context) (int, error) {
	var n int64
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := countScript.Run(ctx, s.client, []string{s.indexKey()}, time.Now().UnixMilli()).Int64()
		n = v
		return err
	})
	return int(n), err
}
