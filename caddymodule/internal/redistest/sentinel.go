package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// MasterName is the name the sentinels of StartSentinel know the primary
// by.
const MasterName = "redistest"

// Sentinel is a primary and a replica watched by three sentinels (quorum
// 2), with timings small enough for tests: the primary is judged down
// after DownAfter, and a failover is tried again after 2s.
type Sentinel struct {
	t         testing.TB
	opts      SentinelOptions
	tls       *TLS
	Servers   []*Server // the primary and the replica, in no fixed role
	Sentinels []*Server
}

// DownAfter is the sentinels' down-after-milliseconds.
const DownAfter = 500 * time.Millisecond

// SentinelOptions are the optional settings of StartSentinel.
type SentinelOptions struct {
	// TLS turns on TLS everywhere: clients, replication, sentinels.
	TLS *TLS
	// Password is the servers' requirepass (and the replica's
	// masterauth, and what the sentinels authenticate with).
	Password string
	// SentinelPassword is the sentinels' own requirepass.
	SentinelPassword string
}

// StartSentinel starts the deployment and waits until the sentinels know
// the replica and each other, so that a failover can happen.
func StartSentinel(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	tc := opts.TLS
	s := &Sentinel{t: t, opts: opts, tls: tc}
	var auth []string
	if opts.Password != "" {
		auth = []string{"--requirepass", opts.Password, "--masterauth", opts.Password}
	}
	primary := start(t, tc, t.TempDir(), nil, auth)
	replica := start(t, tc, t.TempDir(), nil, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port)}, auth...))
	s.Servers = []*Server{primary, replica}
	s.waitReplicaLink(replica.Addr())
	// Each sentinel is told its peers and the replica up front (as a
	// sentinel's own rewritten config would), which saves the seconds
	// of discovering them through hello messages and INFO.
	type peer struct {
		id   string
		port int
	}
	peers := make([]peer, 3)
	for i := range peers {
		peers[i] = peer{id: fmt.Sprintf("%040x", 0x5e771e1<<8|i), port: gatewaytest.FreePort(t)}
	}
	for i, me := range peers {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		var b strings.Builder
		fmt.Fprintf(&b, "sentinel myid %s\n", me.id)
		fmt.Fprintf(&b, "sentinel monitor %s 127.0.0.1 %d 2\n", MasterName, primary.port)
		fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", MasterName, DownAfter.Milliseconds())
		fmt.Fprintf(&b, "sentinel failover-timeout %s 2000\n", MasterName)
		fmt.Fprintf(&b, "sentinel parallel-syncs %s 1\n", MasterName)
		fmt.Fprintf(&b, "sentinel known-replica %s 127.0.0.1 %d\n", MasterName, replica.port)
		if opts.Password != "" {
			fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", MasterName, opts.Password)
		}
		if opts.SentinelPassword != "" {
			fmt.Fprintf(&b, "requirepass %s\nsentinel sentinel-pass %s\n", opts.SentinelPassword, opts.SentinelPassword)
		}
		for j, p := range peers {
			if j != i {
				fmt.Fprintf(&b, "sentinel known-sentinel %s 127.0.0.1 %d %s\n", MasterName, p.port, p.id)
			}
		}
		if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		s.Sentinels = append(s.Sentinels, startOn(t, me.port, tc, dir, []string{conf, "--sentinel"}, nil))
	}
	ctx := context.Background()
	eventually(t, 30*time.Second, "sentinels know the replica and each other", func() bool {
		for _, sn := range s.Sentinels {
			c := s.sentinelClient(sn)
			m, err := c.Master(ctx, MasterName).Result()
			c.Close()
			if err != nil || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return false
			}
		}
		return true
	})
	return s
}

func (s *Sentinel) sentinelClient(sn *Server) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), Password: s.opts.SentinelPassword, TLSConfig: s.clientTLS(), DialTimeout: time.Second, ReadTimeout: time.Second})
}

func (s *Sentinel) clientTLS() *tlsConfig {
	if s.tls == nil {
		return nil
	}
	return s.tls.ClientConfig()
}

// Addrs are the sentinels' addresses.
func (s *Sentinel) Addrs() []string {
	var out []string
	for _, sn := range s.Sentinels {
		out = append(out, sn.Addr())
	}
	return out
}

// PrimaryAddr asks the sentinels which server is the primary now.
func (s *Sentinel) PrimaryAddr() string {
	s.t.Helper()
	ctx := context.Background()
	for _, sn := range s.Sentinels {
		c := s.sentinelClient(sn)
		hp, err := c.GetMasterAddrByName(ctx, MasterName).Result()
		c.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1])
		}
	}
	s.t.Fatal("redistest: no sentinel names a primary")
	return ""
}

// server finds the server at addr.
func (s *Sentinel) server(addr string) *Server {
	for _, sv := range s.Servers {
		if sv.Addr() == addr {
			return sv
		}
	}
	s.t.Fatalf("redistest: %s is none of the sentinel deployment's servers", addr)
	return nil
}

// WaitReplicated waits until the replica has every write the primary
// has taken so far.
func (s *Sentinel) WaitReplicated() {
	s.t.Helper()
	c := s.client(s.PrimaryAddr())
	defer c.Close()
	ctx := context.Background()
	// A write of our own on this connection, then WAIT for it: the
	// replica then has everything before it too.
	if err := c.Set(ctx, "redistest:wait", "1", time.Second).Err(); err != nil {
		s.t.Fatal(err)
	}
	if n, err := c.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n < 1 {
		s.t.Fatalf("redistest: the replica did not acknowledge: %d, %v", n, err)
	}
}

// KillPrimary kills the primary (SIGKILL) and returns its address.
func (s *Sentinel) KillPrimary() string {
	s.t.Helper()
	addr := s.PrimaryAddr()
	s.server(addr).Kill()
	return addr
}

// WaitFailover waits until the sentinels name a primary other than old,
// and it answers as one, and returns its address.
func (s *Sentinel) WaitFailover(old string, within time.Duration) string {
	s.t.Helper()
	var now string
	ctx := context.Background()
	eventually(s.t, within, "sentinel failover", func() bool {
		now = s.PrimaryAddr()
		if now == old {
			return false
		}
		c := s.client(now)
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "role:master")
	})
	return now
}

// client talks to one of the servers.
func (s *Sentinel) client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Password: s.opts.Password, TLSConfig: s.clientTLS(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
}

func (s *Sentinel) waitReplicaLink(addr string) {
	s.t.Helper()
	c := s.client(addr)
	defer c.Close()
	waitReplicaLink(s.t, c)
}

// waitReplicaLink waits until the replica c talks to is in sync with its
// primary.
func waitReplicaLink(t testing.TB, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 30*time.Second, "replica "+c.Options().Addr+" in sync", func() bool {
		info, err := c.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
}
