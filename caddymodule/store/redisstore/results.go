package redisstore

import (
	"context"
	"fmt"
	"time"
)

// PutLoginResult keeps a sealed login result under key for ttl, so that a
// retried login gets the same answer.
func (s *sharedStore) PutLoginResult(ctx context.Context, key string, sealed []byte, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis store: login result ttl must be at least 1ms, got %v", ttl)
	}
	return s.call(ctx, func(ctx context.Context) error {
		return s.client.Set(ctx, s.resultKey(key), sealed, ttl).Err()
	})
}

// GetLoginResult is the result kept under key, or store.ErrNotFound.
func (s *sharedStore) GetLoginResult(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := s.call(ctx, func(ctx context.Context) error {
		v, err := s.client.Get(ctx, s.resultKey(key)).Bytes()
		b = v
		return err
	})
	return b, err
}
