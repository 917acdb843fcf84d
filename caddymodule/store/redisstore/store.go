package redisstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// sharedStore is the store.Store of one app on one Redis deployment: its
// client, local cache and invalidation channel, shared (through the pool
// in module.go) by every config with the same Redis settings and app id.
//
// The keys it writes are listed in keyspace.go. A session copy repeats
// its user's fields, so that a look-up is one GET on every deployment;
// but it is in a Redis Cluster slot of its own (its key is the token's
// hash, which is all a look-up knows), while a user's keys share one.
// Changes to a user therefore cross slots, and each is done in steps that
// are safe whatever runs between them: the steps of each change are
// written on its method (sessions.go, users.go).
type sharedStore struct {
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

	lastReplicaWarning atomic.Int64 // unix ns (replication.go)
}

func newSharedStore(c connSettings, client redis.UniversalClient, appID string, logger *zap.Logger) *sharedStore {
	s := &sharedStore{
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
func (s *sharedStore) Destruct() error {
	s.stopListening()
	return s.client.Close()
}

// Interface guards
var (
	_ store.Store       = (*sharedStore)(nil)
	_ store.FreshLooker = (*sharedStore)(nil)
	_ caddy.Destructor  = (*sharedStore)(nil)
)
