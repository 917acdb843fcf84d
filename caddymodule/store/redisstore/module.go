// Package redisstore is the Redis session store of wechat_auth
// (wechat_auth.stores.redis): sessions shared by every gateway of an app
// through Redis (go-redis v9), a standalone server, a Sentinel-managed
// primary or a Redis Cluster, kept across restarts of Caddy.
package redisstore

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

func init() {
	caddy.RegisterModule(Config{})
}

// The deployments the store connects to. The mode is always given, never
// guessed (from the number of addresses, say): a Sentinel's address
// mistaken for a server's, or a cluster node's for a standalone server's,
// would fail in ways that are hard to see.
const (
	ModeStandalone = "standalone"
	ModeSentinel   = "sentinel"
	ModeCluster    = "cluster"
)

// Defaults of the redis store.
const (
	DefaultMode      = ModeStandalone
	DefaultAddress   = "localhost:6379"
	DefaultKeyPrefix = "wechat_auth:"
	DefaultCacheTTL  = 5 * time.Second
	DefaultCacheSize = 100_000
	DefaultTimeout   = time.Second
)

// Ranges of the settings, checked at `caddy adapt` and again in Validate.
var (
	cacheTTLRange = caddyconf.Range{Min: time.Millisecond, Max: time.Minute, ZeroOff: true}
	timeoutRange  = caddyconf.Range{Min: 10 * time.Millisecond, Max: time.Minute}
)

const (
	// maxDB bounds db: Redis's own default is 16 databases, and a
	// configuration can raise that, but not to millions.
	maxDB = 1 << 16
	// maxCacheSize bounds cache_size (about 500 bytes an entry).
	maxCacheSize = 10_000_000
)

// pool holds one store per deployment, credentials, settings and app id,
// so that a config reload does not reconnect, and the last config out
// closes the connections.
var pool = caddy.NewUsagePool()

// Config is the redis store module (wechat_auth.stores.redis): the
// settings of one Redis deployment. Open gives the store of an app there
// (store.go), shared by every config with the same settings, so that
// several Caddy instances share sessions and a restart of Caddy keeps
// them. Sessions have a fixed TTL, enforced by Redis key expiry.
//
// When Redis is down, failing over or slower than Timeout, every store
// call fails with an error other than store.ErrNotFound, which the
// handler answers with 503 store_unavailable (never 401: that would log
// every user out); it heals by itself when Redis is back.
//
// Only token hashes are stored, so a dump of Redis grants no session; it
// does hold users' session_keys: protect Redis (password, tls, network).
// The keys are listed in keyspace.go.
type Config struct {
	// Mode is the deployment: "standalone" (one server, or a primary
	// behind one address), "sentinel" (a primary found through Redis
	// Sentinel, followed through failovers) or "cluster" (Redis
	// Cluster). Default: standalone.
	Mode string `json:"mode,omitempty"`

	// Address is the server's host:port (standalone), the sentinels'
	// (sentinel) or the cluster's seed nodes' (cluster: one is enough,
	// more survive one being down). In JSON a single address may be
	// given as a string. Default: localhost:6379 (standalone only).
	Address Addresses `json:"address,omitempty"`

	// MasterName is the name the sentinels know the primary by
	// (sentinel mode, where it is required).
	MasterName string `json:"master_name,omitempty"`

	// SentinelUsername is the ACL user of the sentinels themselves
	// (sentinel mode), when they require one. Default: none.
	SentinelUsername string `json:"sentinel_username,omitempty"`

	// SentinelPassword is the sentinels' own password (sentinel mode);
	// use a placeholder such as {env.SENTINEL_PASSWORD}. It is never
	// logged. Default: none.
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// Username for Redis ACLs (Redis 6+). Default: none.
	Username string `json:"username,omitempty"`

	// Password for AUTH; use a placeholder such as {env.REDIS_PASSWORD}
	// to keep it out of the config file. It is never logged. Default:
	// none.
	Password string `json:"password,omitempty"`

	// DB is the Redis database number. Redis Cluster has only database
	// 0, so cluster mode refuses any other. Default: 0.
	DB int `json:"db,omitempty"`

	// KeyPrefix starts every key; the app id follows it, so several apps
	// (and other programs) can share one database. It must not hold "{"
	// or "}": the store's keys carry Redis Cluster hash tags. Default:
	// "wechat_auth:".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// TLS connects with TLS to every server (and sentinel), each
	// certificate checked against the host it was reached at. Default:
	// false.
	TLS bool `json:"tls,omitempty"`

	// CacheTTL is how long a validated look-up may be answered from this
	// instance's memory without asking Redis. A logout, revoke, phone
	// binding or key rotation through another instance reaches this
	// cache at once while Redis is reachable (pub/sub), and at worst
	// after CacheTTL. 0 turns the cache off. Default: 5s.
	CacheTTL *caddy.Duration `json:"cache_ttl,omitempty"`

	// CacheSize bounds the local cache, in sessions (about 500 bytes
	// each); when it is full the least recently used go first (CLOCK).
	// Default: 100000.
	CacheSize int `json:"cache_size,omitempty"`

	// Timeout bounds dialing and each call to Redis, so that a hung
	// Redis costs a request at most this long. Default: 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	logger           *zap.Logger
	conn             connSettings // the settings resolved at provision
	password         caddyconf.Secret
	sentinelPassword caddyconf.Secret
	tlsRoots         tlsRootsHook // tests only: the CA of their servers
	keys             []poolKey
}

// Addresses is one or more host:port. It reads a JSON string as a list
// of one.
type Addresses []string

// UnmarshalJSON accepts "host:port" as well as ["host:port", ...].
func (a *Addresses) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Addresses{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("address: want \"host:port\" or a list of them: %v", err)
	}
	*a = many
	return nil
}

// connSettings are the resolved settings that make one store.
type connSettings struct {
	mode              string
	addresses         string // joined with ","; comparable, for the pool key
	masterName        string
	username          string
	sentinelUsername  string
	db                int
	tls               bool
	timeout, cacheTTL time.Duration
	cacheSize         int
	prefix            string // without the app id
}

// poolKey names a store: its settings, a hash of its passwords (a
// changed password on reload makes a new client) and its app id.
type poolKey struct {
	connSettings
	passwordHash string
	appID        string
}

// tlsRootsHook lets a test trust its own CA (it is nil in production,
// where the system's roots are used).
type tlsRootsHook = func() *tls.Config

// CaddyModule returns the Caddy module information.
func (Config) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  store.Namespace + ".redis",
		New: func() caddy.Module { return new(Config) },
	}
}

// Provision resolves placeholders and applies defaults.
func (r *Config) Provision(ctx caddy.Context) error {
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
	addrs := make([]string, len(r.Address))
	for i, a := range r.Address {
		addrs[i] = resolve("address", a)
	}
	r.conn = connSettings{
		mode:             r.Mode,
		masterName:       resolve("master_name", r.MasterName),
		username:         resolve("username", r.Username),
		sentinelUsername: resolve("sentinel_username", r.SentinelUsername),
		prefix:           resolve("key_prefix", r.KeyPrefix),
		db:               r.DB,
		tls:              r.TLS,
		timeout:          time.Duration(r.Timeout),
		cacheTTL:         DefaultCacheTTL,
		cacheSize:        r.CacheSize,
	}
	if err != nil {
		return err
	}
	if r.password, err = caddyconf.ResolveSecret(repl, "password", r.Password); err != nil {
		return err
	}
	if r.sentinelPassword, err = caddyconf.ResolveSecret(repl, "sentinel_password", r.SentinelPassword); err != nil {
		return err
	}
	if r.conn.mode == "" {
		r.conn.mode = DefaultMode
	}
	if len(addrs) == 0 && r.conn.mode == ModeStandalone {
		addrs = []string{DefaultAddress}
	}
	r.conn.addresses = strings.Join(addrs, ",")
	if r.conn.prefix == "" {
		r.conn.prefix = DefaultKeyPrefix
	}
	if r.conn.timeout == 0 {
		r.conn.timeout = DefaultTimeout
	}
	if r.CacheTTL != nil {
		r.conn.cacheTTL = time.Duration(*r.CacheTTL)
	}
	if r.conn.cacheSize == 0 {
		r.conn.cacheSize = DefaultCacheSize
	}
	return nil
}

// Validate checks the configuration.
func (r *Config) Validate() error {
	if err := r.checkTopology(); err != nil {
		return err
	}
	if err := caddyconf.CheckInt("db", r.DB, 0, maxDB); err != nil {
		return err
	}
	if err := caddyconf.CheckInt("cache_size", r.CacheSize, 0, maxCacheSize); err != nil {
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
	if strings.ContainsAny(r.conn.prefix, "{}") {
		return fmt.Errorf("key_prefix %q: must not hold { or }, which would change the Redis Cluster hash tags of the keys", r.conn.prefix)
	}
	for _, a := range r.addresses() {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("address %q: %v", a, err)
		}
	}
	return nil
}

// checkTopology checks what only makes sense together: the mode, the
// number of addresses, and the settings of one mode only. It runs at
// `caddy adapt` (the Caddyfile) and in Validate (JSON too).
func (r *Config) checkTopology() error {
	switch r.Mode {
	case "", ModeStandalone:
		if len(r.Address) > 1 {
			return fmt.Errorf("address: standalone mode takes one address, got %d (for sentinels or cluster nodes, set mode sentinel or mode cluster)", len(r.Address))
		}
		if r.MasterName != "" || r.SentinelUsername != "" || r.SentinelPassword != "" {
			return errors.New("master_name, sentinel_username and sentinel_password are for mode sentinel")
		}
	case ModeSentinel:
		if len(r.Address) == 0 {
			return errors.New("address: sentinel mode needs the sentinels' addresses")
		}
		if r.MasterName == "" {
			return errors.New("master_name: sentinel mode needs the name the sentinels know the primary by")
		}
	case ModeCluster:
		if len(r.Address) == 0 {
			return errors.New("address: cluster mode needs one or more of the cluster's nodes")
		}
		if r.DB != 0 {
			return fmt.Errorf("db %d: Redis Cluster has only database 0", r.DB)
		}
		if r.MasterName != "" || r.SentinelUsername != "" || r.SentinelPassword != "" {
			return errors.New("master_name, sentinel_username and sentinel_password are for mode sentinel")
		}
	default:
		return fmt.Errorf("mode %q: want standalone, sentinel or cluster", r.Mode)
	}
	return nil
}

func (r *Config) addresses() []string {
	if r.conn.addresses == "" {
		return nil
	}
	return strings.Split(r.conn.addresses, ",")
}

// Open connects (lazily: Redis may be down at start, which must not stop
// Caddy) and returns the store of appID.
func (r *Config) Open(ctx caddy.Context, appID string) (store.Store, error) {
	if appID == "" {
		return nil, errors.New("redis store: empty app id")
	}
	if strings.ContainsAny(appID, "{}") {
		return nil, fmt.Errorf("redis store: app id %q holds { or }", appID)
	}
	key := poolKey{connSettings: r.conn, appID: appID}
	if !r.password.IsZero() || !r.sentinelPassword.IsZero() {
		sum := sha256.Sum256([]byte(r.password.Reveal() + "\x00" + r.sentinelPassword.Reveal()))
		key.passwordHash = hex.EncodeToString(sum[:])
	}
	logger := r.logger.With(zap.String("app_id", appID))
	val, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newSharedStore(r.conn, r.newClient(), appID, logger), nil
	})
	if err != nil {
		return nil, err
	}
	s := val.(*sharedStore)
	r.keys = append(r.keys, key)

	// Say early when Redis cannot be reached, but start anyway: requests
	// get 503 until it is back.
	pctx, cancel := context.WithTimeout(ctx, r.conn.timeout)
	defer cancel()
	fields := []zap.Field{zap.String("mode", r.conn.mode), zap.Strings("address", r.addresses()), zap.Int("db", r.conn.db), zap.String("key_prefix", s.prefix)}
	if err := s.client.Ping(pctx).Err(); err != nil {
		r.logger.Warn("redis session store unreachable; answering 503 until it is", append(fields, zap.Error(err))...)
	} else {
		r.logger.Debug("redis session store connected", fields...)
	}
	return s, nil
}

// newClient makes the go-redis client of the mode: a plain client, a
// failover client that finds the primary through the sentinels (and only
// ever talks to the primary: a replica could answer a revoked token as
// valid), or a cluster client (primaries only, for the same reason).
func (r *Config) newClient() redis.UniversalClient {
	c := r.conn
	var tlsConfig *tls.Config
	if c.tls {
		// No ServerName: each connection checks the certificate against
		// the host it dials, which in sentinel and cluster mode is one
		// the deployment announced.
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if r.tlsRoots != nil {
			tlsConfig = r.tlsRoots()
		}
	}
	// Bounded everywhere: a Redis that hangs must turn into a quick 503,
	// not a pile of stuck requests. One retry covers a pooled connection
	// that died while Redis restarted; the per-call deadline still
	// bounds it.
	const retries = 1
	// One set of options, turned into the client of the mode asked for
	// (UniversalOptions' own conversions; NewUniversalClient would guess
	// the mode from the options instead).
	opts := &redis.UniversalOptions{
		Addrs:            r.addresses(),
		MasterName:       c.masterName,
		SentinelUsername: c.sentinelUsername,
		SentinelPassword: r.sentinelPassword.Reveal(),
		Username:         c.username,
		Password:         r.password.Reveal(),
		DB:               c.db, // (0 in cluster mode: Validate sees to it)
		TLSConfig:        tlsConfig,
		DialTimeout:      c.timeout, ReadTimeout: c.timeout, WriteTimeout: c.timeout, PoolTimeout: c.timeout,
		ContextTimeoutEnabled:    true,
		DialerRetries:            retries,
		MaxRetries:               retries,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	switch c.mode {
	case ModeSentinel:
		return redis.NewFailoverClient(opts.Failover())
	case ModeCluster:
		return redis.NewClusterClient(opts.Cluster())
	default:
		return redis.NewClient(opts.Simple())
	}
}

// Cleanup releases the stores opened by this module; the last config
// holding a client closes it.
func (r *Config) Cleanup() error {
	err := caddyconf.ReleaseAll(pool, r.keys)
	r.keys = nil
	return err
}

// Interface guards
var (
	_ caddy.Provisioner  = (*Config)(nil)
	_ caddy.Validator    = (*Config)(nil)
	_ caddy.CleanerUpper = (*Config)(nil)
	_ store.Module       = (*Config)(nil)
)
