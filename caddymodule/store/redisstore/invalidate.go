package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// The invalidation channel: every change that can make a cached look-up
// wrong (logout, revocation, phone binding, key rotation) is published on
// the store's channel, P inv, by the gateway that made it, after the
// change is in Redis (a logout in the same script as its DEL). Every
// gateway with a local cache subscribes and forgets what the message
// names, so a change through one gateway reaches the others' caches in
// the time of one pub/sub message (about a millisecond on a LAN).
//
// Why pub/sub and not RESP3 client-side caching (CLIENT TRACKING):
// pub/sub works the same on standalone, Sentinel and Cluster (PUBLISH
// reaches subscribers on every node of a cluster) through go-redis's
// stable API, on RESP2 and RESP3 alike; one message names a whole user
// (a revocation of twenty sessions is one message, not twenty key
// invalidations); Redis keeps no per-key table of what each gateway
// read; and the cache stays ours: a hit is a map read with no
// allocation, where go-redis's (experimental) client-side cache stores
// raw replies that every hit would decode again.
//
// When the channel is lost (the connection dropped or killed, Redis
// failing over), messages published meanwhile are lost for this gateway.
// From that moment the cache takes no new entries; the entries it has
// were read while the channel was live, so each is served at most
// cache_ttl after it was read, and no revoked token is honoured longer
// than cache_ttl after its revocation. A cached token keeps passing
// while Redis is briefly away. When the subscription is confirmed again,
// the whole cache is dropped (entries read before that may have missed a
// message) and refills from Redis, with invalidations flowing.
//
// A connection that dies without a word (a network partition) is found
// by a PING after a second of silence that gets no answer in time.

const (
	idleBeforePing   = time.Second
	minResubscribe   = 50 * time.Millisecond
	maxResubscribe   = 2 * time.Second
	minPongWait      = 100 * time.Millisecond
	messageSession   = 's' // "s<token hash hex>": one session
	messageUser      = 'u' // "u<openid>": every session of a user
	tokenHashHexSize = 2 * len(store.TokenHash{})
)

// listen starts the subscriber.
func (s *sharedStore) listen() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	go s.subscriber(ctx)
}

// stopListening stops the subscriber and waits for it.
func (s *sharedStore) stopListening() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.psMu.Lock()
	if s.ps != nil {
		_ = s.ps.Close() // wakes a Receive that waits
	}
	s.psMu.Unlock()
	<-s.done
}

// subscribe opens a new subscription (go-redis dials lazily: a failure
// shows in the first Receive).
func (s *sharedStore) subscribe(ctx context.Context) *redis.PubSub {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	if s.ps != nil {
		_ = s.ps.Close()
		s.ps = nil
	}
	if ctx.Err() != nil {
		return nil
	}
	s.ps = s.client.Subscribe(ctx, s.channel)
	return s.ps
}

func (s *sharedStore) subscriber(ctx context.Context) {
	defer close(s.done)
	ps := s.subscribe(ctx)
	backoff := minResubscribe
	pinged := false
	pongWait := max(s.timeout, minPongWait)
	for ps != nil {
		wait := idleBeforePing
		if pinged {
			wait = pongWait
		}
		msg, err := ps.ReceiveTimeout(ctx, wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				// Silence: ask, and give the answer pongWait.
				if ps.Ping(ctx) == nil {
					pinged = true
					continue
				}
			}
			s.channelLost(err)
			pinged = false
			if errors.As(err, &ne) && ne.Timeout() {
				// No answer to the PING: the connection is dead
				// without saying so. go-redis keeps a connection that
				// only timed out, so start afresh.
				ps = s.subscribe(ctx)
			}
			if s.cluster != nil {
				// The node the channel lived on may be gone: ask the
				// cluster where the slots are now.
				s.cluster.ReloadState(ctx)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxResubscribe)
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.channel {
				s.channelUp()
				backoff = minResubscribe
			}
		case *redis.Message:
			s.invalidate(m.Payload)
		}
	}
}

// channelUp: the subscription is confirmed; every later change reaches
// this gateway. What the cache holds from before may have missed one.
func (s *sharedStore) channelUp() {
	s.cache.dropAll()
	s.cache.live.Store(true)
	s.subscriptions.Add(1)
	if s.channelDown.CompareAndSwap(true, false) {
		s.logger.Info("redis invalidation channel back; local cache dropped and refilling", zap.String("channel", s.channel))
	}
}

// channelLost: messages may be lost from now on; the cache takes no new
// entries until the subscription is confirmed again.
func (s *sharedStore) channelLost(err error) {
	s.cache.live.Store(false)
	if s.channelDown.CompareAndSwap(false, true) {
		s.logger.Warn("redis invalidation channel lost; local cache frozen (each entry lives at most cache_ttl) until it is back",
			zap.String("channel", s.channel), zap.Error(err))
	}
}

// invalidate applies one message.
func (s *sharedStore) invalidate(msg string) {
	switch {
	case len(msg) == 1+tokenHashHexSize && msg[0] == messageSession:
		var th store.TokenHash
		if _, err := hex.Decode(th[:], []byte(msg[1:])); err == nil {
			s.cache.forget(th)
		}
	case len(msg) > 1 && msg[0] == messageUser:
		s.cache.forgetUser(msg[1:])
	}
}
