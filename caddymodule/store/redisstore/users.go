package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// RevokeUser reads the user's index, deletes every listed copy, then
// drops the index entries (and the record, when no token is left) and
// announces the revocation. A failure half way leaves the index intact,
// so the revocation can be repeated.
func (s *sharedStore) RevokeUser(ctx context.Context, openid string) (int, error) {
	s.cache.forgetUser(openid)
	defer s.cache.forgetUser(openid)
	var tokens map[string]string
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		tokens, err = s.client.HGetAll(ctx, s.tokensKey(openid)).Result()
		return err
	})
	if err != nil {
		return 0, err
	}
	// The script's arguments: channel, announcement, now, then the
	// tokens, which are also the index members to drop.
	args := make([]any, 0, len(tokens)+3)
	args = append(args, s.channel, "u"+openid, time.Now().UnixMilli())
	written := []string{s.userKey(openid), s.indexKey()}
	for hx := range tokens {
		args = append(args, hx)
		written = append(written, s.sessionKey(hx))
	}
	dels := make([]*redis.IntCmd, len(tokens))
	err = s.commit(ctx, written,
		func(p redis.Pipeliner) {
			for i, k := range written[2:] {
				dels[i] = p.Del(ctx, k)
			}
			if len(tokens) > 0 {
				p.ZRem(ctx, s.indexKey(), args[3:]...)
			}
		},
		func(p redis.Pipeliner) {
			revokeEndScript.Eval(ctx, p, s.userKeys(openid), args...)
		})
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, err
}

// BindPhone records the phone with the user's script, which answers the
// user's tokens; their copies are rewritten, then the change announced.
func (s *sharedStore) BindPhone(ctx context.Context, openid, phone, countryCode string) error {
	if err := checkFields(phone, countryCode); err != nil {
		return err
	}
	var res *redis.Cmd
	err := s.call(ctx, func(ctx context.Context) error {
		res = bindPhoneScript.Run(ctx, s.client, s.userKeys(openid)[:2], phone, countryCode, time.Now().UnixMilli())
		return res.Err()
	})
	if err != nil {
		return err
	}
	rec, err := parseUserAnswer(res)
	if err != nil {
		return s.failure(err)
	}
	copies := s.copyKeys(rec)
	err = s.commit(ctx, append([]string{s.userKey(openid)}, copies...),
		func(p redis.Pipeliner) { s.rewriteCopies(ctx, p, rec, copies) },
		func(p redis.Pipeliner) {
			if rec.changed {
				p.Publish(ctx, s.channel, "u"+openid)
			}
		})
	s.cache.forgetUser(openid)
	return err
}

// User reads the user record from Redis (never the local cache) in one
// script, which also checks that a token of the user is still live.
func (s *sharedStore) User(ctx context.Context, openid string) (store.User, error) {
	var vals []string
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		vals, err = userScript.Run(ctx, s.client, s.userKeys(openid)[:2], time.Now().UnixMilli()).StringSlice()
		return err
	})
	if err != nil {
		return store.User{}, err
	}
	if len(vals) != 5 || vals[0] != openid {
		return store.User{}, s.failure(fmt.Errorf("unexpected user record of %d fields", len(vals)))
	}
	return store.User{OpenID: vals[0], UnionID: vals[1], SessionKey: vals[2], Phone: vals[3], CountryCode: vals[4]}, nil
}

// ReplaceSessionKey changes the key with the user's script, then rewrites
// the copies of the user's tokens and announces the change, as BindPhone
// does.
func (s *sharedStore) ReplaceSessionKey(ctx context.Context, openid, oldKey, newKey string) (bool, error) {
	if err := checkFields(newKey); err != nil {
		return false, err
	}
	var res *redis.Cmd
	err := s.call(ctx, func(ctx context.Context) error {
		res = replaceKeyScript.Run(ctx, s.client, s.userKeys(openid), oldKey, newKey, time.Now().UnixMilli())
		return res.Err()
	})
	if err != nil {
		return false, err
	}
	rec, err := parseUserAnswer(res)
	if err != nil {
		return false, s.failure(err)
	}
	if !rec.changed {
		return false, nil
	}
	copies := s.copyKeys(rec)
	err = s.commit(ctx, append([]string{s.userKey(openid), s.prevKeyKey(openid)}, copies...),
		func(p redis.Pipeliner) { s.rewriteCopies(ctx, p, rec, copies) },
		func(p redis.Pipeliner) { p.Publish(ctx, s.channel, "u"+openid) })
	s.cache.forgetUser(openid)
	return err == nil, err
}

// PreviousSessionKey is the session key the user's newest login replaced,
// kept for the grace that login gave (store.ErrNotFound after it).
func (s *sharedStore) PreviousSessionKey(ctx context.Context, openid string) (string, error) {
	var key string
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := s.client.Get(ctx, s.prevKeyKey(openid)).Result()
		key = v
		return err
	})
	return key, err
}

// copyKeys returns the keys of the session copies of rec's tokens.
func (s *sharedStore) copyKeys(rec userAnswer) []string {
	keys := make([]string, len(rec.tokens))
	for i, t := range rec.tokens {
		keys[i] = s.sessionKey(t.hex)
	}
	return keys
}

// rewriteCopies queues the rewrite of the copies of rec's tokens (keys
// from copyKeys) at the record's version. Every change of a user does it,
// even one that changed nothing: setCopyScript leaves a copy that is as
// new alone, and a copy left behind by a change that failed half way (a
// phone bound, then a timeout) catches up with the next one, the retry.
func (s *sharedStore) rewriteCopies(ctx context.Context, p redis.Pipeliner, rec userAnswer, keys []string) {
	for i, t := range rec.tokens {
		setCopyScript.Eval(ctx, p, []string{keys[i]}, rec.ver, encodeCopy(rec.ver, t.exp, rec.user))
	}
}

// userAnswer is what createUserScript and bindPhoneScript answer.
type userAnswer struct {
	ver     string
	user    store.User
	changed bool
	tokens  []tokenExpiry
}

type tokenExpiry struct {
	hex string
	exp time.Time
}

func parseUserAnswer(cmd *redis.Cmd) (userAnswer, error) {
	vals, err := cmd.StringSlice()
	if err != nil {
		return userAnswer{}, err
	}
	if len(vals) < 7 || (len(vals)-7)%2 != 0 {
		return userAnswer{}, fmt.Errorf("unexpected answer of %d fields", len(vals))
	}
	a := userAnswer{
		ver:     vals[0],
		user:    store.User{OpenID: vals[1], UnionID: vals[2], SessionKey: vals[3], Phone: vals[4], CountryCode: vals[5]},
		changed: vals[6] == "1",
	}
	for i := 7; i < len(vals); i += 2 {
		ms, err := strconv.ParseInt(vals[i+1], 10, 64)
		if err != nil {
			return userAnswer{}, fmt.Errorf("bad token expiry %q", vals[i+1])
		}
		a.tokens = append(a.tokens, tokenExpiry{hex: vals[i], exp: time.UnixMilli(ms)})
	}
	return a, nil
}
