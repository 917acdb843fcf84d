// Package store is the contract between the wechat_auth handler and its
// session stores: the Store interface, the records it keeps, and the Module
// interface of the Caddy modules in the wechat_auth.stores namespace.
//
// A third-party store is a Caddy module whose ID is
// "wechat_auth.stores.<name>" and that implements Module. Its Store must
// pass the conformance suite in package storetest. The optional interface
// FreshLooker is for stores that answer Lookup from a local cache.
package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Namespace is the Caddy module namespace of session stores.
const Namespace = "wechat_auth.stores"

// TokenHash is the SHA-256 of a session token. Stores only ever see the
// hash: a dump of a store (a Redis RDB, a persist file) grants nothing,
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

// ErrNotFound is returned by a Store when a token, user, previous key or
// login result does not exist or has expired. It means "not
// authenticated"; every other error from a Store means the store itself
// failed, which the handler answers with 503, never 401 (a 401 would log
// every user out).
var ErrNotFound = errors.New("wechat_auth: not found")

// Store keeps sessions, users and retried-login results for one app.
// Implementations are safe for concurrent use and shared by every
// handler instance of the same app (across config reloads, and across
// gateways for a networked store). Every method that changes something
// has made the change durable, as far as the store promises durability,
// before it returns.
type Store interface {
	// CreateSession upserts the user record (replacing the session key,
	// unionid when non-empty, and keeping a bound phone) and stores a new
	// session under th that expires after ttl (fixed, not sliding).
	//
	// When u.SessionKey differs from the key the user had, that previous
	// key stays available through PreviousSessionKey for keyGrace (0: it
	// is dropped at once). A login that keeps the same key changes
	// nothing there.
	CreateSession(ctx context.Context, th TokenHash, u User, ttl, keyGrace time.Duration) (expiresAt time.Time, err error)

	// Lookup resolves a token hash to its session and current user
	// record. It is on the hot path of every pass-through request: no
	// WeChat call, no crypto, no disk, and for a local store no
	// allocation. A store with a local cache may answer from it (see
	// FreshLooker).
	Lookup(ctx context.Context, th TokenHash) (Session, error)

	// DeleteSession removes one session; deleting a missing one is not
	// an error. Once it returns, no Lookup that starts later finds it.
	DeleteSession(ctx context.Context, th TokenHash) error

	// RevokeUser removes every session of openid and returns how many.
	// Once it returns, no Lookup that starts later finds any of them.
	RevokeUser(ctx context.Context, openid string) (int, error)

	// BindPhone records a phone number on an existing user record; it
	// returns ErrNotFound when the user has no live session.
	BindPhone(ctx context.Context, openid, phone, countryCode string) error

	// User returns the user record of openid, with its newest session
	// key, while the user has a live session, and ErrNotFound otherwise
	// (never logged in, logged out of every session, revoked, expired).
	// It reads the record itself, not a local cache: the upstream API
	// signs with the key it answers.
	User(ctx context.Context, openid string) (User, error)

	// ReplaceSessionKey replaces the user's session key by newKey, when
	// it is still oldKey, for every token of the user, and drops the
	// previous key (a key replaced because it leaked must open nothing).
	// The sessions keep their expiry. replaced is false when the key is
	// no longer oldKey (a login replaced it meanwhile: that key stands);
	// ErrNotFound when the user has no live session.
	ReplaceSessionKey(ctx context.Context, openid, oldKey, newKey string) (replaced bool, err error)

	// PreviousSessionKey returns the session key the user's newest login
	// replaced, while its grace (CreateSession's keyGrace) lasts, and
	// ErrNotFound otherwise. Only decryption reads it, never
	// pass-through.
	PreviousSessionKey(ctx context.Context, openid string) (string, error)

	// PutLoginResult and GetLoginResult keep the (sealed) answer to a
	// login code for a short while, so that a client retrying the same
	// code gets the same session without a second call to WeChat. The
	// store keeps its own copy of sealed.
	PutLoginResult(ctx context.Context, key string, sealed []byte, ttl time.Duration) error
	GetLoginResult(ctx context.Context, key string) ([]byte, error)

	// Count returns the number of live sessions. It serves a metrics
	// gauge and the admin API's stats, never a request: it may be up to a
	// minute stale, and must not make Lookup wait.
	Count(ctx context.Context) (int, error)
}

// FreshLooker is implemented by a store that may answer Lookup from a
// local cache (the Redis store keeps validated look-ups for cache_ttl).
// LookupFresh skips that cache. The handler uses it for the few calls
// that need the newest record rather than the fastest answer: the
// endpoints that decrypt with the session key, and a retried login. A
// store without a cache need not implement it.
type FreshLooker interface {
	LookupFresh(ctx context.Context, th TokenHash) (Session, error)
}

// LookupFresh resolves th bypassing s's local cache, if s has one.
func LookupFresh(ctx context.Context, s Store, th TokenHash) (Session, error) {
	if f, ok := s.(FreshLooker); ok {
		return f.LookupFresh(ctx, th)
	}
	return s.Lookup(ctx, th)
}

// Module is a Caddy module in the wechat_auth.stores namespace that opens
// the Store of one app. The handler loads it through its caddy.Context
// and calls Open once in its own Provision; the module releases what it
// opened in its Cleanup (Caddy calls it when the config is unloaded).
// Stores are typically kept in a caddy.UsagePool, so that a config reload
// with the same settings finds the sessions of the config it replaces.
type Module interface {
	caddy.Module
	Open(ctx caddy.Context, appID string) (Store, error)
}
