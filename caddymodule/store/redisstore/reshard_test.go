package redisstore

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
)

// clusterPrimaries are the cluster's primaries with their node ids, in
// the order of c.Nodes.
func clusterPrimaries(t *testing.T, c *redistest.Cluster) (addrs, ids []string) {
	t.Helper()
	ctx := context.Background()
	for _, n := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		info, err := cl.Info(ctx, "replication").Result()
		id, err2 := cl.Do(ctx, "cluster", "myid").Text()
		cl.Close()
		if err != nil || err2 != nil {
			t.Fatalf("node %s: %v %v", n.Addr(), err, err2)
		}
		if strings.Contains(info, "role:master") {
			addrs, ids = append(addrs, n.Addr()), append(ids, id)
		}
	}
	if len(addrs) != 3 {
		t.Fatalf("%d primaries, want 3", len(addrs))
	}
	return addrs, ids
}

// A Redis Cluster reshard of 3,000 slots (redis-cli --cluster reshard)
// while look-ups, logins and logouts run through a gateway: no look-up of
// a live session is ever answered 401, and afterwards every session
// answered 200 works and every logout answered 204 stays dead.
func TestGatewayClusterReshard(t *testing.T) {
	c := redistest.StartCluster(t, nil)
	cli, err := exec.LookPath("redis-cli") // (StartCluster needs it too)
	if err != nil {
		t.Fatal(err)
	}
	addrs, ids := clusterPrimaries(t, c)
	g := startGateway(t, "mode cluster", "address "+addrs[0], "cache_ttl off")

	var live, leaving []session
	for i := range 200 {
		a := g.mustLogin(fmt.Sprintf("early%d", i))
		if i%4 == 0 {
			leaving = append(leaving, a)
		} else {
			live = append(live, a)
		}
	}
	tr := g.startTraffic(live, 3, 2, "storm")
	// Logouts while the slots move, each answered 204 or 503.
	var dead []session
	var outWG sync.WaitGroup
	outWG.Add(1)
	go func() {
		defer outWG.Done()
		for _, a := range leaving {
			st, body, err := g.do("POST", "/wechat/logout", a.token, "")
			tr.note("logout", st, body, err, st == http.StatusNoContent)
			if st == http.StatusNoContent {
				dead = append(dead, a)
			}
			time.Sleep(150 * time.Millisecond) // spread over the reshard
		}
	}()

	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	out, err := exec.Command(cli, "--cluster", "reshard", addrs[0],
		"--cluster-from", ids[0], "--cluster-to", ids[1], "--cluster-slots", "3000", "--cluster-yes").CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("redis-cli --cluster reshard: %v\n%s", err, lastLines(string(out), 20))
	}
	time.Sleep(300 * time.Millisecond)
	outWG.Wait()
	answered := tr.finish()
	c.WaitHealthy(30 * time.Second)
	if moved := slotsOf(t, addrs[1]); moved < 5461+3000-1 {
		t.Fatalf("the target serves %d slots after the reshard", moved)
	}

	for _, a := range append(live, answered...) {
		g.wantServed(a, "")
	}
	for _, a := range dead {
		g.wantDead(a)
	}
	if len(answered) < 10 || len(dead) < len(leaving)/2 {
		t.Fatalf("%d logins and %d logouts answered during the reshard: the test did less than it says", len(answered), len(dead))
	}
	t.Logf("reshard of 3000 slots took %v; %d logins and %d logouts answered meanwhile, all kept", took.Round(time.Millisecond), len(answered), len(dead))
}

// slotsOf counts the slots the node at addr serves.
func slotsOf(t *testing.T, addr string) int {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: addr})
	defer cl.Close()
	slots, err := cl.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range slots {
		if s.Nodes[0].Addr == addr {
			n += s.End - s.Start + 1
		}
	}
	return n
}

// lastLines is the end of a long output.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
