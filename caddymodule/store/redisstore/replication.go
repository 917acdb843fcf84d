package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// commit runs the last steps of a change and, on Sentinel and Cluster,
// waits (briefly) until a replica has them: a failover then keeps every
// answered login and, more important, every logout and revocation. The
// keys written name the Cluster nodes to wait on.
func (s *sharedStore) commit(ctx context.Context, written []string, steps ...func(redis.Pipeliner)) error {
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
func (s *sharedStore) queueWait(ctx context.Context, p redis.Pipeliner) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx, "wait", 1, s.replicaWait().Milliseconds())
	_ = p.Process(ctx, cmd)
	return cmd
}

// replicaWait bounds WAIT: a replica on a healthy network acknowledges in
// well under a millisecond; a missing one must not hold every login for
// the whole timeout.
func (s *sharedStore) replicaWait() time.Duration {
	return min(s.timeout/2, 100*time.Millisecond)
}

// clusterReplicated waits for a replica of every primary that took a
// write. WAIT must run on a connection that wrote to that primary, so it
// goes with a marker write in the primary's own slot (the hash tag of
// one of the keys written there).
func (s *sharedStore) clusterReplicated(ctx context.Context, written []string) {
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

// replicated reports a change no replica acknowledged in time. The change
// stands (it is on the primary, as durable as a standalone server makes
// it); the log says at most once a minute that failover could lose it.
func (s *sharedStore) replicated(acks int64, err error) {
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
