package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// How the store talks to Redis: every call bounded by the timeout, its
// error turned into store.ErrNotFound or a store failure, and steps that
// must follow each other run in order.

// call bounds one step by the timeout and turns its error into either
// store.ErrNotFound (redis.Nil) or a store failure.
func (s *sharedStore) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.failure(f(ctx))
}

// failure is call's mapping of an error, for errors met elsewhere (a
// pipeline's, an answer that would not parse).
func (s *sharedStore) failure(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return store.ErrNotFound
	default:
		if s.cluster != nil {
			// A node that stopped answering may have been replaced
			// by its replica: go-redis learns of that from a MOVED
			// answer, which a dead node never gives, or after a
			// minute. Ask the cluster now (one reload at a time).
			s.cluster.ReloadState(context.Background())
		}
		return fmt.Errorf("wechat_auth redis store: %w", err)
	}
}

// batch runs the commands fill queues as one pipeline, within the
// timeout, and reports the first failure (a missing key is none).
func (s *sharedStore) batch(ctx context.Context, fill func(redis.Pipeliner)) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmds, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error { fill(p); return nil })
	for _, c := range cmds {
		if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
			return s.failure(e)
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return s.failure(err)
	}
	return nil
}

// inOrder runs the steps one after the other. Where one connection runs
// a pipeline in order (standalone, Sentinel) consecutive steps go in one
// round trip; on Cluster a pipeline's commands run on their nodes in
// parallel, so each step is a pipeline of its own that waits for the one
// before.
func (s *sharedStore) inOrder(ctx context.Context, steps ...func(redis.Pipeliner)) error {
	if s.ordered {
		return s.batch(ctx, func(p redis.Pipeliner) {
			for _, f := range steps {
				f(p)
			}
		})
	}
	for _, f := range steps {
		if err := s.batch(ctx, f); err != nil {
			return err
		}
	}
	return nil
}
