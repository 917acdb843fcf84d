package caddymodule

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TokenHash is the SHA-256 of a session token. Stores only ever see the
// hash: a dump of a store (a Redis RDB, a snapshot file) grants nothing,
// because the token itself cannot be recovered from it.
type TokenHash [sha256.Size]byte

// HashToken returns the store key of a session token. It hashes a stack
// copy of the token: on the pass-through path this saves an allocation.
func HashToken(token string) TokenHash {
	var buf [64]byte
	if len(token) > len(buf) {
		return sha256.Sum256([]byte(token))
	}
	n := copy(buf[:], token)
	return sha256.Sum256(buf[:n])
}

// User is the server-side record of one WeChat user of one app. Every
// session of the user points at it, so a new login (which rotates the
// session_key) or a phone binding is seen by all of the user's tokens.
type User struct {
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	// SessionKey is WeChat's newest session_key for the user. It never
	// leaves the server: no response, header, log or metric carries it.
	SessionKey string `json:"session_key"`
	// Phone is the bound phone number without country code
	// (purePhoneNumber); empty until one is bound.
	Phone string `json:"phone,omitempty"`
	// CountryCode goes with Phone ("86").
	CountryCode string `json:"country_code,omitempty"`
}

// Session is what a valid token resolves to.
type Session struct {
	User      User
	ExpiresAt time.Time
}

// ErrNotFound is returned by a Store when a token, user or login result
// does not exist or has expired. It means "not authenticated"; every
// other error from a Store means the store itself failed, which the
// handler answers with 503, never 401 (a 401 would log every user out).
var ErrNotFound = errors.New("wechat_auth: not found")

// Store keeps sessions, users and retried-login results for one app.
// Implementations are safe for concurrent use and shared by every
// handler instance of the same app (across config reloads, and across
// gateways for a networked store).
type Store interface {
	// CreateSession upserts the user record (replacing the session key,
	// unionid when non-empty, and keeping a bound phone) and stores a new
	// session under tokenHash that expires after ttl (fixed, not sliding).
	CreateSession(ctx context.Context, tokenHash TokenHash, user User, ttl time.Duration) (expiresAt time.Time, err error)

	// Lookup resolves a token hash to its session and current user record.
	// It is on the hot path of every pass-through request: no WeChat call,
	// no crypto, and for the memory store no allocation.
	Lookup(ctx context.Context, tokenHash TokenHash) (Session, error)

	// DeleteSession removes one session; deleting a missing one is not
	// an error.
	DeleteSession(ctx context.Context, tokenHash TokenHash) error

	// RevokeUser removes every session of openid and returns how many.
	RevokeUser(ctx context.Context, openid string) (int, error)

	// BindPhone records a phone number on an existing user record.
	BindPhone(ctx context.Context, openid, phone, countryCode string) error

	// PutLoginResult and GetLoginResult keep the (sealed) answer to a
	// login code for a short while, so that a client retrying the same
	// code gets the same session without a second call to WeChat.
	PutLoginResult(ctx context.Context, key string, sealed []byte, ttl time.Duration) error
	GetLoginResult(ctx context.Context, key string) ([]byte, error)

	// Count returns the number of live sessions.
	Count(ctx context.Context) (int, error)
}

// freshLookupKey marks a context whose Lookup must not be answered from
// the local cache.
type freshLookupKey struct{}

// withFreshLookup returns a context whose Lookup skips any local cache a
// store keeps (the Redis store's cache_ttl): for the rare calls that need
// the newest session_key (decryption) rather than the fastest answer.
// Stores without a cache ignore it.
func withFreshLookup(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshLookupKey{}, true)
}

// releasePoolKeys drops a store module's use of every pool entry it
// opened; the last user of an entry destructs it (closing a Redis client,
// writing a snapshot). It is the whole of a store module's Cleanup.
func releasePoolKeys[K comparable](pool *caddy.UsagePool, keys []K) error {
	var errs []error
	for _, k := range keys {
		if _, err := pool.Delete(k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// StoreModule is a Caddy module in the wechat_auth.stores namespace that
// opens the Store of one app. The handler calls Open once in its own
// Provision; the module releases what it opened in its Cleanup.
type StoreModule interface {
	caddy.Module
	Open(ctx caddy.Context, appID string) (Store, error)
}
