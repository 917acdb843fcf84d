package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// Cluster is a Redis Cluster of three primaries with one replica each,
// made by `redis-cli --cluster create`, with a cluster-node-timeout small
// enough for tests (NodeTimeout).
type Cluster struct {
	t     testing.TB
	tls   *TLS
	Nodes []*Server
}

// NodeTimeout is the nodes' cluster-node-timeout.
const NodeTimeout = time.Second

// StartCluster starts six nodes, makes them a cluster and waits until
// every slot is served and every replica in sync. tc, when not nil,
// turns on TLS everywhere (clients, replication, the cluster bus).
func StartCluster(t testing.TB, tc *TLS) *Cluster {
	t.Helper()
	cli := need(t, "redis-cli")
	c := &Cluster{t: t, tls: tc}
	dir := t.TempDir()
	for i := range 6 {
		args := []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i),
			"--cluster-node-timeout", strconv.FormatInt(NodeTimeout.Milliseconds(), 10),
			// The bus port is ours too, not port+10000 (which may be
			// taken, or beyond 65535).
			"--cluster-port", strconv.Itoa(gatewaytest.FreePort(t)),
		}
		if tc != nil {
			args = append(args, "--tls-cluster", "yes")
		}
		c.Nodes = append(c.Nodes, start(t, tc, dir, nil, args))
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if tc != nil {
		args = append(args, "--tls", "--cacert", tc.CAFile)
	}
	cmd := exec.Command(cli, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(30 * time.Second)
	for _, n := range c.Nodes {
		if c.role(n) == "slave" {
			cl := c.client(n)
			waitReplicaLink(t, cl)
			cl.Close()
		}
	}
	return c
}

func (c *Cluster) client(n *Server) *redis.Client {
	var cfg *tlsConfig
	if c.tls != nil {
		cfg = c.tls.ClientConfig()
	}
	return redis.NewClient(&redis.Options{Addr: n.Addr(), TLSConfig: cfg, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
}

// Addrs are the nodes' addresses (seeds for a cluster client).
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// alive lists the nodes that were not killed.
func (c *Cluster) alive() []*Server {
	var out []*Server
	for _, n := range c.Nodes {
		n.mu.Lock()
		up := n.cmd != nil
		n.mu.Unlock()
		if up {
			out = append(out, n)
		}
	}
	return out
}

func (c *Cluster) role(n *Server) string {
	cl := c.client(n)
	defer cl.Close()
	info, err := cl.Info(context.Background(), "replication").Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "role:"); ok {
			return v
		}
	}
	return ""
}

// WaitHealthy waits until every live node says cluster_state:ok and
// agrees with the others on who serves every slot.
func (c *Cluster) WaitHealthy(within time.Duration) {
	c.t.Helper()
	ctx := context.Background()
	eventually(c.t, within, "cluster state ok on every node", func() bool {
		var owners string
		for i, n := range c.alive() {
			cl := c.client(n)
			info, err := cl.ClusterInfo(ctx).Result()
			slots, err2 := cl.ClusterSlots(ctx).Result()
			cl.Close()
			if err != nil || err2 != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			var b strings.Builder
			covered := 0
			for _, s := range slots {
				fmt.Fprintf(&b, "%d-%d:%s ", s.Start, s.End, s.Nodes[0].Addr)
				covered += s.End - s.Start + 1
			}
			if covered != 16384 || (i > 0 && b.String() != owners) {
				return false
			}
			owners = b.String()
		}
		return true
	})
}

// PrimaryFor is the node that serves key now.
func (c *Cluster) PrimaryFor(key string) *Server {
	c.t.Helper()
	ctx := context.Background()
	for _, n := range c.alive() {
		cl := c.client(n)
		slot, err := cl.ClusterKeySlot(ctx, key).Result()
		slots, err2 := cl.ClusterSlots(ctx).Result()
		cl.Close()
		if err != nil || err2 != nil {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) {
				for _, m := range c.Nodes {
					if m.Addr() == s.Nodes[0].Addr {
						return m
					}
				}
			}
		}
	}
	c.t.Fatalf("redistest: no node serves %q", key)
	return nil
}

// WaitReplicated waits until the replicas of every primary have every
// write their primary has taken so far.
func (c *Cluster) WaitReplicated() {
	c.t.Helper()
	ctx := context.Background()
	for _, n := range c.alive() {
		if c.role(n) != "master" {
			continue
		}
		cl := c.client(n)
		// A write in a slot of this node on this connection, then
		// WAIT: the replica then has everything before it too.
		var key string
		for i := 0; ; i++ {
			key = "redistest:wait:" + strconv.Itoa(i)
			if c.PrimaryFor(key) == n {
				break
			}
		}
		err := cl.Set(ctx, key, "1", time.Second).Err()
		var acks int64
		if err == nil {
			acks, err = cl.Wait(ctx, 1, 5*time.Second).Result()
		}
		cl.Close()
		if err != nil || acks < 1 {
			c.t.Fatalf("redistest: the replica of %s did not acknowledge: %d, %v", n.Addr(), acks, err)
		}
	}
}

// KillPrimaryFor kills (SIGKILL) the primary that serves key, and
// returns it.
func (c *Cluster) KillPrimaryFor(key string) *Server {
	c.t.Helper()
	n := c.PrimaryFor(key)
	n.Kill()
	return n
}

// WaitFailover waits until a replica of the killed primary serves its
// slots and the cluster is healthy again.
func (c *Cluster) WaitFailover(killed *Server, key string, within time.Duration) *Server {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var now *Server
	eventually(c.t, within, "a replica promoted in place of "+killed.Addr(), func() bool {
		now = nil
		for _, n := range c.alive() {
			if c.role(n) == "master" {
				cl := c.client(n)
				slot, _ := cl.ClusterKeySlot(context.Background(), key).Result()
				slots, err := cl.ClusterSlots(context.Background()).Result()
				cl.Close()
				if err != nil {
					continue
				}
				for _, s := range slots {
					if int64(s.Start) <= slot && slot <= int64(s.End) && s.Nodes[0].Addr == n.Addr() {
						now = n
					}
				}
			}
		}
		return now != nil && now != killed
	})
	c.WaitHealthy(time.Until(deadline) + time.Second)
	return now
}
