package caddymodule

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(RedisStore{})
}

// Defaults of the redis store.
const (
	DefaultRedisAddress   = "localhost:6379"
	DefaultRedisKeyPrefix = "wechat_auth:"
	DefaultRedisCacheTTL  = 5 * time.Second
	DefaultRedisTimeout   = time.Second

	// redisCacheMax bounds the local cache of validated look-ups; when
	// it is full it is emptied and refilled by the next requests.
	redisCacheMax = 1 << 16
)

// redisPool holds one client per server, database, credentials, key prefix
// and app id, so that a config reload does not reconnect, and the last
// config out closes the connections.
var redisPool = caddy.NewUsagePool()

// RedisStore keeps sessions in Redis (go-redis v9), so that several Caddy
// instances share them and a restart of Caddy keeps them. Sessions have a
// fixed TTL, enforced by Redis key expiry.
//
// When Redis is down or slower than Timeout, every store call fails with an
// error other than ErrNotFound, which the handler answers with 503
// store_unavailable (never 401: that would log every user out); it heals by
// itself when Redis is back.
//
// Keys, under KeyPrefix + app id + ":" (P below):
//
//	P s:<hex sha256 of token>  string "<expiry unix ms>:<openid>", Redis TTL = session TTL
//	P u:<openid>               hash openid, unionid, session_key, phone, country_code;
//	                           TTL extended to the longest session of the user
//	P t:<openid>               set of the user's token hashes (so a revoke reaches
//	                           every token from any instance); same TTL as P u:
//	P idx                      sorted set of token hashes by expiry, for Count
//	P r:<key>                  a sealed login result, short TTL
//
// Only token hashes are stored, so a dump of Redis grants no session; it
// does hold users' session_keys: protect Redis (password, tls, network).
// Multi-key updates run as Lua scripts, so a login is never half-written.
// The scripts name keys they derive, which a standalone Redis (or a
// replicated one behind a single address) allows; Redis Cluster is not
// supported.
type RedisStore struct {
	// Address is host:port of the Redis server. Default: localhost:6379.
	Address string `json:"address,omitempty"`

	// Username for Redis ACLs (Redis 6+). Default: none.
	Username string `json:"username,omitempty"`

	// Password for AUTH; use a placeholder such as {env.REDIS_PASSWORD}
	// to keep it out of the config file. It is never logged. Default:
	// none.
	Password string `json:"password,omitempty"`

	// DB is the Redis database number. Default: 0.
	DB int `json:"db,omitempty"`

	// KeyPrefix starts every key; the app id follows it, so several apps
	// (and other programs) can share one database. Default:
	// "wechat_auth:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// TLS connects with TLS (certificate checked against the host of
	// Address). Default: false.
	TLS bool `json:"tls,omitempty"`

	// CacheTTL is how long a validated look-up is answered from this
	// instance's memory without asking Redis. A logout, revoke or phone
	// binding done through another instance is seen here within it;
	// through this instance, at once. 0 turns the cache off. Default: 5s.
	CacheTTL *caddy.Duration `json:"cache_ttl,omitempty"`

	// Timeout bounds dialing and each call to Redis, so that a hung
	// Redis costs a request at most this long. Default: 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	logger *zap.Logger
	keys   []redisPoolKey
}

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wechat_auth.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// Provision validates the configuration.
func (r *RedisStore) Provision(ctx caddy.Context) error {
	r.logger = ctx.Logger()
	if r.DB < 0 {
		return fmt.Errorf("db must not be negative, got %d", r.DB)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("timeout must not be negative, got %v", time.Duration(r.Timeout))
	}
	if r.CacheTTL != nil && *r.CacheTTL < 0 {
		return fmt.Errorf("cache_ttl must not be negative, got %v", time.Duration(*r.CacheTTL))
	}
	return nil
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. Syntax:
//
//	redis {
//	    address    <host:port>
//	    username   <name>
//	    password   <password>
//	    db         <n>
//	    key_prefix <prefix>
//	    tls
//	    cache_ttl  <duration>|off
//	    timeout    <duration>
//	}
func (r *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		sub := d.Val()
		switch sub {
		case "tls":
			r.TLS = true
		case "address", "username", "password", "db", "key_prefix", "cache_ttl", "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			val := d.Val()
			switch sub {
			case "address":
				r.Address = val
			case "username":
				r.Username = val
			case "password":
				r.Password = val
			case "db":
				n, err := strconv.Atoi(val)
				if err != nil || n < 0 {
					return d.Errf("db: %q is not a database number", val)
				}
				r.DB = n
			case "key_prefix":
				r.KeyPrefix = val
			case "cache_ttl":
				ttl := caddy.Duration(0)
				if val != "off" {
					dur, err := caddy.ParseDuration(val)
					if err != nil || dur < 0 {
						return d.Errf("cache_ttl: %q is not a duration", val)
					}
					ttl = caddy.Duration(dur)
				}
				r.CacheTTL = &ttl
			case "timeout":
				dur, err := caddy.ParseDuration(val)
				if err != nil || dur <= 0 {
					return d.Errf("timeout: %q is not a positive duration", val)
				}
				r.Timeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("unrecognized redis store subdirective %q", sub)
		}
		if d.NextArg() {
			return d.Errf("%s: too many arguments", sub)
		}
	}
	return nil
}

type redisPoolKey struct {
	address, username, passwordHash string
	db                              int
	tls                             bool
	timeout, cacheTTL               time.Duration
	prefix                          string // includes the app id
}

// Open connects (lazily: Redis may be down at start, which must not stop
// Caddy) and returns the store of appID.
func (r *RedisStore) Open(ctx caddy.Context, appID string) (Store, error) {
	if appID == "" {
		return nil, errors.New("redis store: empty app id")
	}
	logger := r.logger
	if logger == nil {
		logger = ctx.Logger(r)
	}
	repl := caddy.NewReplacer()
	key := redisPoolKey{
		address:  repl.ReplaceAll(r.Address, ""),
		username: repl.ReplaceAll(r.Username, ""),
		db:       r.DB,
		tls:      r.TLS,
		timeout:  time.Duration(r.Timeout),
		cacheTTL: DefaultRedisCacheTTL,
		prefix:   repl.ReplaceAll(r.KeyPrefix, ""),
	}
	// The password is resolved here and goes only into the client's
	// options; the pool key holds a hash of it, so that a changed
	// password on reload makes a new client.
	password := repl.ReplaceAll(r.Password, "")
	if password != "" {
		sum := sha256.Sum256([]byte(password))
		key.passwordHash = hex.EncodeToString(sum[:])
	}
	if key.address == "" {
		key.address = DefaultRedisAddress
	}
	if key.prefix == "" {
		key.prefix = DefaultRedisKeyPrefix
	}
	key.prefix += appID + ":"
	if key.timeout <= 0 {
		key.timeout = DefaultRedisTimeout
	}
	if r.CacheTTL != nil {
		key.cacheTTL = time.Duration(*r.CacheTTL)
	}
	host, _, err := net.SplitHostPort(key.address)
	if err != nil {
		return nil, fmt.Errorf("redis store: address %q: %v", key.address, err)
	}

	val, _, err := redisPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		opts := &redis.Options{
			Addr:     key.address,
			Username: key.username,
			Password: password,
			DB:       key.db,
			// Bounded everywhere: a Redis that hangs must turn into a
			// quick 503, not a pile of stuck requests.
			DialTimeout:           key.timeout,
			ReadTimeout:           key.timeout,
			WriteTimeout:          key.timeout,
			PoolTimeout:           key.timeout,
			ContextTimeoutEnabled: true,
			DialerRetries:         1,
			// One retry covers a pooled connection that died while
			// Redis restarted; the per-call deadline still bounds it.
			MaxRetries:               1,
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}
		if key.tls {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		}
		s := &redisStore{
			client:   redis.NewClient(opts),
			prefix:   key.prefix,
			timeout:  key.timeout,
			cacheTTL: key.cacheTTL,
			cache:    make(map[TokenHash]redisCached),
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	s := val.(*redisStore)
	r.keys = append(r.keys, key)

	// Say early when Redis cannot be reached, but start anyway: requests
	// get 503 until it is back.
	pctx, cancel := context.WithTimeout(ctx, key.timeout)
	defer cancel()
	fields := []zap.Field{zap.String("address", key.address), zap.Int("db", key.db), zap.String("key_prefix", key.prefix)}
	if err := s.client.Ping(pctx).Err(); err != nil {
		logger.Warn("redis session store unreachable; answering 503 until it is", append(fields, zap.Error(err))...)
	} else {
		logger.Debug("redis session store connected", fields...)
	}
	return s, nil
}

// Cleanup releases the stores opened by this module; the last config
// holding a client closes it.
func (r *RedisStore) Cleanup() error {
	err := releasePoolKeys(redisPool, r.keys)
	r.keys = nil
	return err
}

// redisStore is the Store shared by every config with the same Redis
// settings and app id.
type redisStore struct {
	client   *redis.Client
	prefix   string
	timeout  time.Duration
	cacheTTL time.Duration

	cacheMu sync.RWMutex
	cache   map[TokenHash]redisCached
}

type redisCached struct {
	sess  Session
	until int64 // unix ns
}

// Destruct closes the client when the last config using it is gone.
func (s *redisStore) Destruct() error { return s.client.Close() }

func (s *redisStore) sessKey(hexHash string) string { return s.prefix + "s:" + hexHash }
func (s *redisStore) userKey(openid string) string  { return s.prefix + "u:" + openid }
func (s *redisStore) tokensKey(openid string) string {
	return s.prefix + "t:" + openid
}
func (s *redisStore) idxKey() string { return s.prefix + "idx" }

// call bounds one Redis call by the timeout and turns its error into
// either ErrNotFound (redis.Nil) or a store failure.
func (s *redisStore) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := f(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return ErrNotFound
	default:
		return fmt.Errorf("wechat_auth redis store: %w", err)
	}
}

// createScript upserts the user (keeping unionid and phone when the login
// has none), stores the session, indexes it, and stretches the TTL of the
// user record and token set to the longest session. It also drops index
// entries of expired sessions, and, when a user has many, their dead
// tokens, so nothing grows without bound.
var createScript = redis.NewScript(`
local ttl = tonumber(ARGV[7])
redis.call('HSET', KEYS[2], 'openid', ARGV[2], 'session_key', ARGV[4])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'unionid', ARGV[3]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'phone', ARGV[5], 'country_code', ARGV[6]) end
redis.call('SET', KEYS[1], ARGV[8] .. ':' .. ARGV[2], 'PX', ttl)
redis.call('SADD', KEYS[3], ARGV[1])
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[9])
if redis.call('SCARD', KEYS[3]) > 32 then
  for _, h in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if redis.call('EXISTS', ARGV[10] .. h) == 0 then redis.call('SREM', KEYS[3], h) end
  end
end
return 1
`)

// lookupScript resolves a session and its user in one round trip.
var lookupScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local i = string.find(v, ':', 1, true)
if not i then return false end
local u = redis.call('HMGET', ARGV[1] .. string.sub(v, i + 1), 'openid', 'unionid', 'session_key', 'phone', 'country_code')
if not u[1] then return false end
return {string.sub(v, 1, i - 1), u[1], u[2] or '', u[3] or '', u[4] or '', u[5] or ''}
`)

var deleteScript = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
redis.call('DEL', KEYS[1])
local i = string.find(v, ':', 1, true)
if i then redis.call('SREM', ARGV[2] .. string.sub(v, i + 1), ARGV[1]) end
return 1
`)

var revokeScript = redis.NewScript(`
local n = 0
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. h)
  redis.call('ZREM', KEYS[3], h)
end
redis.call('DEL', KEYS[1], KEYS[2])
return n
`)

var bindPhoneScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'phone', ARGV[1], 'country_code', ARGV[2])
return 1
`)

var countScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
`)

func (s *redisStore) CreateSession(ctx context.Context, h TokenHash, u User, ttl time.Duration) (time.Time, error) {
	if u.OpenID == "" {
		return time.Time{}, errors.New("redis store: empty openid")
	}
	if ttl < time.Millisecond {
		return time.Time{}, fmt.Errorf("redis store: session ttl must be at least 1ms, got %v", ttl)
	}
	now := time.Now()
	exp := now.Add(ttl).Truncate(time.Millisecond)
	hx := hex.EncodeToString(h[:])
	err := s.call(ctx, func(ctx context.Context) error {
		return createScript.Run(ctx, s.client,
			[]string{s.sessKey(hx), s.userKey(u.OpenID), s.tokensKey(u.OpenID), s.idxKey()},
			hx, u.OpenID, u.UnionID, u.SessionKey, u.Phone, u.CountryCode,
			ttl.Milliseconds(), exp.UnixMilli(), now.UnixMilli(), s.prefix+"s:",
		).Err()
	})
	if err != nil {
		return time.Time{}, err
	}
	// Other tokens of the user cached here carry the old session_key.
	s.evictUser(u.OpenID)
	return exp, nil
}

func (s *redisStore) Lookup(ctx context.Context, h TokenHash) (Session, error) {
	fresh := ctx.Value(freshLookupKey{}) != nil
	if s.cacheTTL > 0 && !fresh {
		s.cacheMu.RLock()
		c, ok := s.cache[h]
		s.cacheMu.RUnlock()
		if ok && c.until > time.Now().UnixNano() {
			return c.sess, nil
		}
	}
	var vals []string
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := lookupScript.Run(ctx, s.client, []string{s.sessKey(hex.EncodeToString(h[:]))}, s.prefix+"u:").StringSlice()
		vals = v
		return err
	})
	if err != nil {
		return Session{}, err
	}
	if len(vals) != 6 {
		return Session{}, fmt.Errorf("wechat_auth redis store: unexpected look-up answer of %d fields", len(vals))
	}
	ms, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil {
		return Session{}, fmt.Errorf("wechat_auth redis store: bad session expiry: %v", err)
	}
	sess := Session{
		User:      User{OpenID: vals[1], UnionID: vals[2], SessionKey: vals[3], Phone: vals[4], CountryCode: vals[5]},
		ExpiresAt: time.UnixMilli(ms),
	}
	now := time.Now()
	if !sess.ExpiresAt.After(now) {
		return Session{}, ErrNotFound // Redis has not expired it yet
	}
	if s.cacheTTL > 0 {
		until := now.Add(s.cacheTTL)
		if sess.ExpiresAt.Before(until) {
			until = sess.ExpiresAt
		}
		s.cacheMu.Lock()
		if len(s.cache) >= redisCacheMax {
			// Crude but bounded: start over rather than track recency
			// on every hit.
			s.cache = make(map[TokenHash]redisCached)
		}
		s.cache[h] = redisCached{sess: sess, until: until.UnixNano()}
		s.cacheMu.Unlock()
	}
	return sess, nil
}

func (s *redisStore) evict(h TokenHash) {
	if s.cacheTTL <= 0 {
		return
	}
	s.cacheMu.Lock()
	delete(s.cache, h)
	s.cacheMu.Unlock()
}

// evictUser drops every cached token of openid: O(cache), only on
// writes.
func (s *redisStore) evictUser(openid string) {
	if s.cacheTTL <= 0 {
		return
	}
	s.cacheMu.Lock()
	for h, c := range s.cache {
		if c.sess.User.OpenID == openid {
			delete(s.cache, h)
		}
	}
	s.cacheMu.Unlock()
}

func (s *redisStore) DeleteSession(ctx context.Context, h TokenHash) error {
	s.evict(h) // even if Redis fails: this instance must stop honouring it
	hx := hex.EncodeToString(h[:])
	return s.call(ctx, func(ctx context.Context) error {
		return deleteScript.Run(ctx, s.client, []string{s.sessKey(hx), s.idxKey()}, hx, s.prefix+"t:").Err()
	})
}

func (s *redisStore) RevokeUser(ctx context.Context, openid string) (int, error) {
	s.evictUser(openid)
	var n int64
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := revokeScript.Run(ctx, s.client,
			[]string{s.tokensKey(openid), s.userKey(openid), s.idxKey()}, s.prefix+"s:").Int64()
		n = v
		return err
	})
	s.evictUser(openid) // a look-up may have refilled it meanwhile
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
	s.evictUser(openid)
	if ok == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *redisStore) PutLoginResult(ctx context.Context, key string, sealed []byte, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis store: login result ttl must be at least 1ms, got %v", ttl)
	}
	return s.call(ctx, func(ctx context.Context) error {
		return s.client.Set(ctx, s.prefix+"r:"+key, sealed, ttl).Err()
	})
}

func (s *redisStore) GetLoginResult(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := s.client.Get(ctx, s.prefix+"r:"+key).Bytes()
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
		v, err := countScript.Run(ctx, s.client, []string{s.idxKey()}, time.Now().UnixMilli()).Int64()
		n = v
		return err
	})
	return int(n), err
}

// Interface guards
var (
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
	_ StoreModule           = (*RedisStore)(nil)
	_ Store                 = (*redisStore)(nil)
	_ caddy.Destructor      = (*redisStore)(nil)
)
