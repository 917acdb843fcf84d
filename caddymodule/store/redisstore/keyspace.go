package redisstore

import (
	"encoding/hex"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// The keys of a store, under key_prefix + app id + ":" (P below):
//
//	P s:<hex sha256 of token>  the session copy: "<version>\0<expiry ms>\0<openid>\0<unionid>\0
//	                           <session key>\0<phone>\0<country code>" (copy.go), Redis TTL = session TTL
//	P u:{<openid>}             the user record: hash openid, unionid, session_key, phone,
//	                           country_code, ver; gone with the user's last session (its
//	                           logout, a revoke), TTL = the user's latest session
//	P t:{<openid>}             the user's tokens: hash token hash -> expiry (unix ms); same TTL
//	P pk:{<openid>}            the session key the newest login replaced, TTL = the grace
//	P idx                      sorted set of token hashes by expiry, for Count
//	P r:<key>                  a sealed login result, short TTL
//	P w, P w:{...}             1-second markers that WAIT for a replica (Sentinel, Cluster)
//
// and the pub/sub channel P inv (invalidate.go), on which every change is
// announced to every gateway's local cache ("s<token hash>" for one
// session, "u<openid>" for every session of a user).
//
// The {<openid>} hash tag puts a user's keys in one Redis Cluster slot,
// so the scripts that change them (scripts.go) run there.

func (s *sharedStore) sessionKey(hexHash string) string { return s.prefix + "s:" + hexHash }
func (s *sharedStore) userKey(openid string) string     { return s.prefix + "u:{" + openid + "}" }
func (s *sharedStore) tokensKey(openid string) string   { return s.prefix + "t:{" + openid + "}" }
func (s *sharedStore) prevKeyKey(openid string) string  { return s.prefix + "pk:{" + openid + "}" }
func (s *sharedStore) indexKey() string                 { return s.prefix + "idx" }
func (s *sharedStore) resultKey(key string) string      { return s.prefix + "r:" + key }

// userKeys are the keys of a user's slot, in the order the user scripts
// take them as KEYS.
func (s *sharedStore) userKeys(openid string) []string {
	return []string{s.userKey(openid), s.tokensKey(openid), s.prevKeyKey(openid)}
}

// hexOf is a token hash as it appears in keys and in the user's index.
func hexOf(th store.TokenHash) string { return hex.EncodeToString(th[:]) }

// hashTag is the part of a key Redis Cluster hashes.
func hashTag(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						return key[i+1 : j]
					}
					return key
				}
			}
			return key
		}
	}
	return key
}
