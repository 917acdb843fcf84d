package redisstore

import (
	"context"
	"crypto/tls"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// The harness of the Redis store's tests: Redis deployments of every
// mode (redistest), stores opened on them as Caddy would, and a command
// counter.

// openRedis provisions a Config as Caddy would and opens the
// store of appID; the returned cleanup is what Caddy calls when the config
// is unloaded.
func openRedis(t testing.TB, m *Config, appID string, logs **observer.ObservedLogs) (*sharedStore, func()) {
	t.Helper()
	roots := m.tlsRoots
	s, cleanup := storetest.OpenModule(t, m, appID, func() {
		m.logger = zap.NewNop()
		m.tlsRoots = roots
		if logs != nil {
			core, obs := observer.New(zap.DebugLevel)
			m.logger, *logs = zap.New(core), obs
		}
	})
	return s.(*sharedStore), cleanup
}

// wantCount checks Count exactly (the index answers it exactly).
func wantCount(t testing.TB, s store.Store, want int) {
	t.Helper()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Fatalf("Count = %d, want %d", n, want)
	}
}

func durationPtr(d time.Duration) *caddy.Duration {
	cd := caddy.Duration(d)
	return &cd
}

func withCache(ttl time.Duration) func(*Config) {
	return func(m *Config) { m.CacheTTL = durationPtr(ttl) }
}

var modes = []string{ModeStandalone, ModeSentinel, ModeCluster}

// deployment is a Redis of one mode started for a test.
type deployment struct {
	mode     string
	tls      *redistest.TLS
	server   *redistest.Server
	sentinel *redistest.Sentinel
	cluster  *redistest.Cluster
}

// startDeployment starts a Redis of mode, with TLS when tc is not nil.
func startDeployment(t testing.TB, mode string, tc *redistest.TLS) *deployment {
	t.Helper()
	d := &deployment{mode: mode, tls: tc}
	switch mode {
	case ModeStandalone:
		if tc != nil {
			d.server = redistest.StartTLS(t, tc)
		} else {
			d.server = redistest.Start(t)
		}
	case ModeSentinel:
		d.sentinel = redistest.StartSentinel(t, redistest.SentinelOptions{TLS: tc})
	case ModeCluster:
		d.cluster = redistest.StartCluster(t, tc)
	}
	return d
}

// config is a store module configured for the deployment; adjust may
// change it before use.
func (d *deployment) config(adjust func(*Config)) *Config {
	m := &Config{Mode: d.mode, TLS: d.tls != nil}
	switch d.mode {
	case ModeStandalone:
		m.Address = Addresses{d.server.Addr()}
	case ModeSentinel:
		m.Address = d.sentinel.Addrs()
		m.MasterName = redistest.MasterName
	case ModeCluster:
		m.Address = d.cluster.Addrs()
	}
	if d.tls != nil {
		m.tlsRoots = d.tls.ClientConfig
	}
	if adjust != nil {
		adjust(m)
	}
	return m
}

// open opens the store of appID on the deployment.
func (d *deployment) open(t testing.TB, appID string, adjust func(*Config)) *sharedStore {
	t.Helper()
	s, _ := openRedis(t, d.config(adjust), appID, nil)
	return s
}

// raw is a plain client of the deployment, for looking behind the
// store's back.
func (d *deployment) raw(t testing.TB) redis.UniversalClient {
	t.Helper()
	var cfg *tls.Config
	if d.tls != nil {
		cfg = d.tls.ClientConfig()
	}
	var c redis.UniversalClient
	switch d.mode {
	case ModeStandalone:
		c = redis.NewClient(&redis.Options{Addr: d.server.Addr(), TLSConfig: cfg})
	case ModeSentinel:
		c = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: redistest.MasterName, SentinelAddrs: d.sentinel.Addrs(), TLSConfig: cfg})
	case ModeCluster:
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: d.cluster.Addrs(), TLSConfig: cfg})
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitReplicated waits until a replica has every write so far.
func (d *deployment) waitReplicated() {
	switch d.mode {
	case ModeSentinel:
		d.sentinel.WaitReplicated()
	case ModeCluster:
		d.cluster.WaitReplicated()
	}
}

// waitLive waits until the store's invalidation channel is subscribed,
// so that look-ups are cached from now on.
func waitLive(t testing.TB, s *sharedStore) {
	t.Helper()
	gatewaytest.Eventually(t, 10*time.Second, "invalidation channel subscribed", func() bool { return s.cache.live.Load() })
}

// countCommands counts what s sends to the servers from now on (on a
// cluster, at each node: a redirection counts).
func countCommands(t testing.TB, s *sharedStore) *commandCounter {
	t.Helper()
	c := new(commandCounter)
	if s.cluster != nil {
		s.cluster.OnNewNode(func(n *redis.Client) { n.AddHook(c) })
		if err := s.cluster.ForEachShard(context.Background(), func(_ context.Context, n *redis.Client) error {
			n.AddHook(c)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	s.client.AddHook(c)
	return c
}

// commandCounter counts the commands a client sends (a pipeline counts
// its commands, and as one round trip).
type commandCounter struct {
	commands, roundTrips atomic.Int64
	mu                   sync.Mutex
	names                []string
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hello" || cmd.Name() == "cluster" {
			// A new connection's handshake, or go-redis refreshing
			// its map of the cluster: not a request's.
			return next(ctx, cmd)
		}
		c.mu.Lock()
		c.names = append(c.names, cmd.FullName())
		c.mu.Unlock()
		c.commands.Add(1)
		c.roundTrips.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.commands.Add(int64(len(cmds)))
		c.roundTrips.Add(1)
		return next(ctx, cmds)
	}
}
