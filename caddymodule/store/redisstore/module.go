// Package redisstore is the Redis session store of wechat_auth
// (wechat_auth.stores.redis): sessions shared by every gateway of an app
// through Redis (go-redis v9), kept across restarts of Caddy.
package redisstore

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

func init() {
	caddy.RegisterModule(RedisStore{})
}

// Defaults of the redis store.
const (
	DefaultAddress   = "localhost:6379"
	DefaultKeyPrefix = "wechat_auth:"
	DefaultCacheTTL  = 5 * time.Second
	DefaultTimeout   = time.Second
)

// Ranges of the duration settings, checked at `caddy adapt` and again in
// Validate.
var (
	cacheTTLRange = caddyconf.Range{Min: time.Millisecond, Max: time.Minute, ZeroOff: true}
	timeoutRange  = caddyconf.Range{Min: 10 * time.Millisecond, Max: time.Minute}
)

// pool holds one store per server, database, credentials, key prefix and
// app id, so that a config reload does not reconnect, and the last config
// out closes the connections.
var pool = caddy.NewUsagePool()

// RedisStore keeps sessions in Redis (go-redis v9), so that several Caddy
// instances share them and a restart of Caddy keeps them. Sessions have a
// fixed TTL, enforced by Redis key expiry.
//
// When Redis is down or slower than Timeout, every store call fails with an
// error other than store.ErrNotFound, which the handler answers with 503
// store_unavailable (never 401: that would log every user out); it heals by
// itself when Redis is back.
//
// Only token hashes are stored, so a dump of Redis grants no session; it
// does hold users' session_keys: protect Redis (password, tls, network).
// The keys are listed in store.go.
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

	logger   *zap.Logger
	conn     connSettings // the settings resolved at provision
	password caddyconf.Secret
	keys     []poolKey
}

// connSettings are the resolved settings that make one store.
type connSettings struct {
	address, username string
	db                int
	tls               bool
	timeout, cacheTTL time.Duration
	prefix            string // without the app id
}

// poolKey names a store: its settings, a hash of its password (a changed
// password on reload makes a new client) and its app id.
type poolKey struct {
	connSettings
	passwordHash string
	appID        string
}

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  store.Namespace + ".redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// Provision resolves placeholders and applies defaults.
func (r *RedisStore) Provision(ctx caddy.Context) error {
	r.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	var err error
	resolve := func(name, value string) string {
		if err != nil {
			return ""
		}
		var out string
		out, err = caddyconf.Resolve(repl, name, value)
		return out
	}
	r.conn = connSettings{
		address:  resolve("address", r.Address),
		username: resolve("username", r.Username),
		prefix:   resolve("key_prefix", r.KeyPrefix),
		db:       r.DB,
		tls:      r.TLS,
		timeout:  time.Duration(r.Timeout),
		cacheTTL: DefaultCacheTTL,
	}
	r.password = caddyconf.NewSecret(resolve("password", r.Password))
	if err != nil {
		return err
	}
	if r.conn.address == "" {
		r.conn.address = DefaultAddress
	}
	if r.conn.prefix == "" {
		r.conn.prefix = DefaultKeyPrefix
	}
	if r.conn.timeout == 0 {
		r.conn.timeout = DefaultTimeout
	}
	if r.CacheTTL != nil {
		r.conn.cacheTTL = time.Duration(*r.CacheTTL)
	}
	return nil
}

// Validate checks the configuration.
func (r *RedisStore) Validate() error {
	if err := caddyconf.CheckInt("db", r.DB, 0, maxDB); err != nil {
		return err
	}
	if err := timeoutRange.Check("timeout", time.Duration(r.Timeout)); err != nil {
		return err
	}
	if r.CacheTTL != nil {
		if err := cacheTTLRange.Check("cache_ttl", time.Duration(*r.CacheTTL)); err != nil {
			return err
		}
	}
	if _, _, err := net.SplitHostPort(r.conn.address); err != nil {
		return fmt.Errorf("address %q: %v", r.conn.address, err)
	}
	return nil
}

// Open connects (lazily: Redis may be down at start, which must not stop
// Caddy) and returns the store of appID.
func (r *RedisStore) Open(ctx caddy.Context, appID string) (store.Store, error) {
	if appID == "" {
		return nil, errors.New("redis store: empty app id")
	}
	key := poolKey{connSettings: r.conn, appID: appID}
	if !r.password.IsZero() {
		sum := sha256.Sum256([]byte(r.password.Reveal()))
		key.passwordHash = hex.EncodeToString(sum[:])
	}
	val, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newRedisStore(r.conn, r.clientOptions(), appID), nil
	})
	if err != nil {
		return nil, err
	}
	s := val.(*redisStore)
	r.keys = append(r.keys, key)

	// Say early when Redis cannot be reached, but start anyway: requests
	// get 503 until it is back.
	pctx, cancel := context.WithTimeout(ctx, r.conn.timeout)
	defer cancel()
	fields := []zap.Field{zap.String("address", r.conn.address), zap.Int("db", r.conn.db), zap.String("key_prefix", s.prefix)}
	if err := s.client.Ping(pctx).Err(); err != nil {
		r.logger.Warn("redis session store unreachable; answering 503 until it is", append(fields, zap.Error(err))...)
	} else {
		r.logger.Debug("redis session store connected", fields...)
	}
	return s, nil
}

// clientOptions are go-redis's options for the resolved settings.
func (r *RedisStore) clientOptions() *redis.Options {
	c := r.conn
	opts := &redis.Options{
		Addr:     c.address,
		Username: c.username,
		Password: r.password.Reveal(),
		DB:       c.db,
		// Bounded everywhere: a Redis that hangs must turn into a quick
		// 503, not a pile of stuck requests.
		DialTimeout:           c.timeout,
		ReadTimeout:           c.timeout,
		WriteTimeout:          c.timeout,
		PoolTimeout:           c.timeout,
		ContextTimeoutEnabled: true,
		DialerRetries:         1,
		// One retry covers a pooled connection that died while Redis
		// restarted; the per-call deadline still bounds it.
		MaxRetries:               1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if c.tls {
		host, _, _ := net.SplitHostPort(c.address)
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	return opts
}

// Cleanup releases the stores opened by this module; the last config
// holding a client closes it.
func (r *RedisStore) Cleanup() error {
	err := caddyconf.ReleaseAll(pool, r.keys)
	r.keys = nil
	return err
}

// Interface guards
var (
	_ caddy.Provisioner  = (*RedisStore)(nil)
	_ caddy.Validator    = (*RedisStore)(nil)
	_ caddy.CleanerUpper = (*RedisStore)(nil)
	_ store.Module       = (*RedisStore)(nil)
)
