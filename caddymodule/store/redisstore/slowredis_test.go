package redisstore

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
)

// Redis answering slowly for 5 s, two ways: DEBUG SLEEP 5 (the server
// runs nothing else meanwhile, new connections included) and CLIENT
// PAUSE 5000 (it holds every client's commands). Through a gateway whose
// store timeout is slowTimeout, pass-through of a live session answers
// 503 store_unavailable within the timeout plus a generous margin, never
// hangs and never answers 401; and the first request after Redis answers
// again is a 200.
func TestGatewayRedisSlow(t *testing.T) {
	const (
		slowTimeout = 500 * time.Millisecond
		slowFor     = 5 * time.Second
		// margin is generous: a loaded machine, a retry on a fresh
		// connection, the gateway's own work.
		margin = 2 * time.Second
	)
	srv := redistest.Start(t, "--enable-debug-command", "yes")
	g := startGateway(t, "address "+srv.Addr(), "cache_ttl off", "timeout "+slowTimeout.String())
	var live []session
	for _, u := range []string{"slow0", "slow1", "slow2", "slow3"} {
		live = append(live, g.mustLogin(u))
	}
	// Two connections (one for the command, one for the PING that
	// waits for its end), with no read timeout.
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: -1, PoolSize: 2})
	t.Cleanup(func() { admin.Close() })

	for _, slow := range []struct {
		name string
		cmd  []any
	}{
		{"DEBUG SLEEP", []any{"debug", "sleep", slowFor.Seconds()}},
		{"CLIENT PAUSE", []any{"client", "pause", slowFor.Milliseconds(), "all"}},
	} {
		t.Run(strings.ReplaceAll(slow.name, " ", "_"), func(t *testing.T) {
			for _, a := range live {
				g.wantServed(a, "")
			}
			done := make(chan error, 1)
			began := time.Now()
			go func() { done <- admin.Do(context.Background(), slow.cmd...).Err() }()
			time.Sleep(100 * time.Millisecond) // (the command reached Redis)
			answered, slowest := 0, time.Duration(0)
			for i := 0; time.Since(began) < slowFor-2*slowTimeout-margin; i++ {
				a := live[i%len(live)]
				start := time.Now()
				st, body, err := g.get(a.token)
				took := time.Since(start)
				if err != nil || st != http.StatusServiceUnavailable || !strings.Contains(body, `"store_unavailable"`) {
					t.Fatalf("pass-through while Redis is slow: %d %q %v after %v, want 503 store_unavailable", st, body, err, took)
				}
				if took > slowTimeout+margin {
					t.Fatalf("pass-through while Redis is slow took %v, store timeout %v", took, slowTimeout)
				}
				answered, slowest = answered+1, max(slowest, took)
			}
			// Redis answers again: a PING sent now is answered when
			// the sleep or the pause is over.
			if err := admin.Ping(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			for _, a := range live {
				g.wantServed(a, "")
			}
			t.Logf("%s %v: %d pass-through answers 503 meanwhile, the slowest in %v (store timeout %v); 200 again %v after Redis answered",
				slow.name, slowFor, answered, slowest.Round(time.Millisecond), slowTimeout, time.Since(back).Round(time.Millisecond))
		})
	}
}
