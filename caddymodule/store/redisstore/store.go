package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// redisStore is the Store shared by every config with the same Redis
// settings and app id.
//
// Keys, under key_prefix + app id + ":" (P below):
//
//	P s:<hex sha256 of token>  the session copy: "<version>\0<expiry ms>\0<openid>\0<unionid>\0
//	                           <session key>\0<phone>\0<country code>", Redis TTL = session TTL
//	P u:{<openid>}             the user record: hash openid, unionid, session_key, phone,
//	                           country_code, ver; TTL = the user's latest session
//	P t:{<openid>}             the user's tokens: hash token hash -> expiry (unix ms); same TTL
//	P pk:{<openid>}            the session key the newest login replaced, TTL = the grace
//	P idx                      sorted set of token hashes by expiry, for Count
//	P r:<key>                  a sealed login result, short TTL
//	P w, P w:{...}             1-second markers that WAIT for a replica (Sentinel, Cluster)
//
// and the pub/sub channel P inv, on which every change is announced to
// every gateway's local cache ("s<token hash>" for one session,
// "u<openid>" for every session of a user).
//
// The {<openid>} hash tag puts a user's keys in one Redis Cluster slot,
// so the scripts that change them run there. A session copy is in a slot
// of its own (its key is the token's hash, which is all a look-up knows),
// and it repeats the user's fields, so that a look-up is one GET on every
// deployment. Changes to a user therefore cross slots; each is done in
// steps that are safe whatever runs between them:
//
//   - login: (1) the session copy is created, provisional (never an
//     answer: the token is not handed out yet); (2) the user's script
//     upserts the record, bumps its version when it changed, indexes the
//     token and answers the user's other tokens; (3) every copy of the
//     user is rewritten at that version, never over a newer one and never
//     recreated once deleted; (4) the change is announced. A revocation
//     running meanwhile can find the token in the user's index only
//     after (2), when the copy exists already (1), so it deletes the
//     copy, and (3) cannot bring it back.
//   - logout: the copy is deleted and announced in one script, then
//     dropped from the user's index and from idx.
//   - revoke: the user's index is read, every listed copy deleted, then
//     the index entries (and the record, when no token is left) dropped
//     and the revocation announced. A failure half way leaves the index
//     intact, so the revocation can be repeated.
//   - phone binding: the user's script records the phone and answers the
//     tokens, whose copies are rewritten, then the change is announced.
//
// Where one connection runs a pipeline in order (standalone, Sentinel)
// consecutive steps go in one round trip; on Cluster a pipeline's
// commands run on their nodes in parallel, so each step waits for the one
// before.
type redisStore struct {
	client  redis.UniversalClient
	cluster *redis.ClusterClient // cluster mode only
	mode    string
	ordered bool // a pipeline runs in order on one connection
	prefix  string
	channel string
	timeout time.Duration
	logger  *zap.Logger
	cache   *lookupCache
	flights singleflight.Group // concurrent cache misses of one token make one read

	// The invalidation channel (invalidate.go).
	cancel        context.CancelFunc
	done          chan struct{}
	psMu          sync.Mutex
	ps            *redis.PubSub
	subscriptions atomic.Int64 // confirmed (re)subscriptions, for tests
	channelDown   atomic.Bool  // said in the log once per outage

	lastReplicaWarning atomic.Int64 // unix ns
}

func newRedisStore(c connSettings, client redis.UniversalClient, appID string, logger *zap.Logger) *redisStore {
	s := &redisStore{
		client:  client,
		mode:    c.mode,
		prefix:  c.prefix + appID + ":",
		timeout: c.timeout,
		logger:  logger,
		cache:   newLookupCache(c.cacheTTL, c.cacheSize),
	}
	s.channel = s.prefix + "inv"
	if cc, ok := client.(*redis.ClusterClient); ok {
		s.cluster = cc
	} else {
		s.ordered = true
	}
	if s.cache.enabled() {
		s.listen()
	}
	return s
}

// Destruct stops listening and closes the client when the last config
// using the store is gone.
func (s *redisStore) Destruct() error {
	s.stopListening()
	return s.client.Close()
}

func (s *redisStore) sessionKey(hexHash string) string { return s.prefix + "s:" + hexHash }
func (s *redisStore) userKey(openid string) string     { return s.prefix + "u:{" + openid + "}" }
func (s *redisStore) tokensKey(openid string) string   { return s.prefix + "t:{" + openid + "}" }
func (s *redisStore) prevKeyKey(openid string) string  { return s.prefix + "pk:{" + openid + "}" }
func (s *redisStore) indexKey() string                 { return s.prefix + "idx" }
func (s *redisStore) resultKey(key string) string      { return s.prefix + "r:" + key }

func (s *redisStore) userKeys(openid string) []string {
	return []string{s.userKey(openid), s.tokensKey(openid), s.prevKeyKey(openid)}
}

// call bounds one step by the timeout and turns its error into either
// store.ErrNotFound (redis.Nil) or a store failure.
func (s *redisStore) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.failure(f(ctx))
}

func (s *redisStore) failure(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return store.ErrNotFound
	default:
		if s.cluster != nil {
			// A node that stopped answering may have been replaced
			// by its replica: go-redis learns of that from a MOVED
			// answer, which a dead node never gives, or after a
			// minute. Ask the cluster now (one reload at a time).
			s.cluster.ReloadState(context.Background())
		}
		return fmt.Errorf("wechat_auth redis store: %w", err)
	}
}

// batch runs the commands fill queues as one pipeline, within the
// timeout, and reports the first failure (a missing key is none).
func (s *redisStore) batch(ctx context.Context, fill func(redis.Pipeliner)) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error { fill(p); return nil })
	for _, c := range cmds {
		if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
			return s.failure(e)
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return s.failure(err)
	}
	return nil
}

// inOrder runs the steps one after the other: in one round trip where a
// pipeline keeps its order, else one pipeline each.
func (s *redisStore) inOrder(ctx context.Context, steps ...func(redis.Pipeliner)) error {
	if s.ordered {
		return s.batch(ctx, func(p redis.Pipeliner) {
			for _, f := range steps {
				f(p)
			}
		})
	}
	for _, f := range steps {
		if err := s.batch(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// commit runs the last steps of a change and, on Sentinel and Cluster,
// waits (briefly) until a replica has them: a failover then keeps every
// answered login and, more important, every logout and revocation. The
// keys written name the Cluster nodes to wait on.
func (s *redisStore) commit(ctx context.Context, written []string, steps ...func(redis.Pipeliner)) error {
	var wait *redis.IntCmd
	if s.mode == ModeSentinel {
		// WAIT counts the writes of its own connection: a marker write
		// right before it makes sure the connection has one, after all
		// of this change's.
		steps = append(steps, func(p redis.Pipeliner) {
			p.Set(ctx, s.prefix+"w", "1", time.Second)
			wait = s.queueWait(ctx, p)
		})
	}
	if err := s.inOrder(ctx, steps...); err != nil {
		return err
	}
	switch {
	case wait != nil:
		s.replicated(wait.Val(), wait.Err())
	case s.cluster != nil:
		s.clusterReplicated(ctx, written)
	}
	return nil
}

// queueWait queues WAIT 1 <replicaWait>.
func (s *redisStore) queueWait(ctx context.Context, p redis.Pipeliner) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, "wait", 1, s.replicaWait().Milliseconds())
	_ = p.Process(ctx, cmd)
	return cmd
}

// replicaWait bounds WAIT: a replica on a healthy network acknowledges in
// well under a millisecond; a missing one must not hold every login for
// the whole timeout.
func (s *redisStore) replicaWait() time.Duration {
	return min(s.timeout/2, 100*time.Millisecond)
}

// clusterReplicated waits for a replica of every primary that took a
// write. WAIT must run on a connection that wrote to that primary, so it
// goes with a marker write in the primary's own slot (the hash tag of
// one of the keys written there).
func (s *redisStore) clusterReplicated(ctx context.Context, written []string) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	nodes := map[*redis.Client]string{}
	for _, k := range written {
		if n, err := s.cluster.MasterForKey(ctx, k); err == nil {
			if _, ok := nodes[n]; !ok {
				nodes[n] = k
			}
		}
	}
	var wg sync.WaitGroup
	for n, k := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var wait *redis.IntCmd
			_, _ = n.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, s.prefix+"w:{"+hashTag(k)+"}", "1", time.Second)
				wait = s.queueWait(ctx, p)
				return nil
			})
			s.replicated(wait.Val(), wait.Err())
		}()
	}
	wg.Wait()
}

// hashTag is the part of a key Redis Cluster hashes.
func hashTag(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						return key[i+1 : j]
					}
					return key
				}
			}
			return key
		}
	}
	return key
}

// replicated reports a change no replica acknowledged in time. The change
// stands (it is on the primary, as durable as a standalone server makes
// it); the log says at most once a minute that failover could lose it.
func (s *redisStore) replicated(acks int64, err error) {
	if err == nil && acks >= 1 {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastReplicaWarning.Load()
	if now-last < int64(time.Minute) || !s.lastReplicaWarning.CompareAndSwap(last, now) {
		return
	}
	fields := []zap.Field{zap.String("mode", s.mode), zap.Duration("waited", s.replicaWait())}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	s.logger.Warn("no replica acknowledged a session change in time; a failover now could lose it", fields...)
}

func hexOf(th store.TokenHash) string { return hex.EncodeToString(th[:]) }

func (s *redisStore) CreateSession(ctx context.Context, th store.TokenHash, u store.User, ttl, keyGrace time.Duration) (time.Time, error) {
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

// copyKeys returns the keys of the session copies of rec's tokens.
func (s *redisStore) copyKeys(rec userAnswer) []string {
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
func (s *redisStore) rewriteCopies(ctx context.Context, p redis.Pipeliner, rec userAnswer, keys []string) {
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

// Lookup answers from the local cache, or with one GET. Concurrent
// misses of one token share one read, unless an invalidation came
// between them (the generation is part of the flight's key).
func (s *redisStore) Lookup(ctx context.Context, th store.TokenHash) (store.Session, error) {
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
func (s *redisStore) read(ctx context.Context, th store.TokenHash) (store.Session, error) {
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
func (s *redisStore) LookupFresh(ctx context.Context, th store.TokenHash) (store.Session, error) {
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

// DeleteSession deletes in Redis (and announces it) first, forgetting
// the local copy before and after: this gateway stops honouring the token
// even when Redis fails, and the cache's generation keeps a look-up that
// read Redis before the delete from caching the dead session again.
func (s *redisStore) DeleteSession(ctx context.Context, th store.TokenHash) error {
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
	return s.commit(ctx, []string{sk, s.tokensKey(sess.User.OpenID), s.indexKey()}, func(p redis.Pipeliner) {
		p.HDel(ctx, s.tokensKey(sess.User.OpenID), hx)
		p.ZRem(ctx, s.indexKey(), hx)
	})
}

func (s *redisStore) RevokeUser(ctx context.Context, openid string) (int, error) {
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

func (s *redisStore) BindPhone(ctx context.Context, openid, phone, countryCode string) error {
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
