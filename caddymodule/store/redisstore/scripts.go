package redisstore

import "github.com/redis/go-redis/v9"

// Every multi-key update is one Lua script, so that nothing is ever
// half-written. P is the store's prefix (key_prefix + app id + ":"). The
// scripts read some keys whose names they derive from a value (the user
// of a session, the sessions of a user): a standalone Redis allows that,
// Redis Cluster does not.

// createScript upserts the user (keeping unionid and phone when the login
// has none), keeps the key it replaces for the grace, stores the session,
// indexes it, and stretches the TTL of the user record and token set to
// the longest session. It also drops index entries of expired sessions,
// and, when a user has many, their dead tokens, so nothing grows without
// bound.
//
//	KEYS[1] P s:<token hash>   the session
//	KEYS[2] P u:<openid>       the user record
//	KEYS[3] P t:<openid>       the user's token hashes
//	KEYS[4] P idx              all sessions by expiry (for Count)
//	KEYS[5] P pk:<openid>      the session key the newest login replaced
//	ARGV[1] token hash (hex)   ARGV[2] openid       ARGV[3] unionid ("" keeps)
//	ARGV[4] session key        ARGV[5] phone ("" keeps)  ARGV[6] country code
//	ARGV[7] session TTL (ms)   ARGV[8] expiry (unix ms)  ARGV[9] now (unix ms)
//	ARGV[10] P s: (to find the user's dead tokens)
//	ARGV[11] key grace (ms; 0 keeps no previous key)
var createScript = redis.NewScript(`
local ttl = tonumber(ARGV[7])
local old = redis.call('HGET', KEYS[2], 'session_key')
if not old then
  redis.call('DEL', KEYS[5])
elseif old ~= ARGV[4] then
  if tonumber(ARGV[11]) > 0 then
    redis.call('SET', KEYS[5], old, 'PX', ARGV[11])
  else
    redis.call('DEL', KEYS[5])
  end
end
redis.call('HSET', KEYS[2], 'openid', ARGV[2], 'session_key', ARGV[4])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'unionid', ARGV[3]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'phone', ARGV[5], 'country_code', ARGV[6]) end
redis.call('SET', KEYS[1], ARGV[8] .. ':' .. ARGV[2], 'PX', ttl)
redis.call('SADD', KEYS[3], ARGV[1])
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[9])
if redis.call('SCARD', KEYS[3]) > 32 then
  for _, h in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if redis.call('EXISTS', ARGV[10] .. h) == 0 then redis.call('SREM', KEYS[3], h) end
  end
end
return 1
`)

// lookupScript resolves a session and its user in one round trip. It
// answers {expiry ms, openid, unionid, session key, phone, country code},
// or nil.
//
//	KEYS[1] P s:<token hash>
//	ARGV[1] P u: (the user record is ARGV[1] .. openid)
var lookupScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local i = string.find(v, ':', 1, true)
if not i then return false end
local u = redis.call('HMGET', ARGV[1] .. string.sub(v, i + 1), 'openid', 'unionid', 'session_key', 'phone', 'country_code')
if not u[1] then return false end
return {string.sub(v, 1, i - 1), u[1], u[2] or '', u[3] or '', u[4] or '', u[5] or ''}
`)

// deleteScript removes one session and its entries in the user's token
// set and the index.
//
//	KEYS[1] P s:<token hash>   KEYS[2] P idx
//	ARGV[1] token hash (hex)   ARGV[2] P t: (the token set is ARGV[2] .. openid)
var deleteScript = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
redis.call('DEL', KEYS[1])
local i = string.find(v, ':', 1, true)
if i then redis.call('SREM', ARGV[2] .. string.sub(v, i + 1), ARGV[1]) end
return 1
`)

// revokeScript removes every session of a user, the user record and the
// previous key, and answers how many sessions there were.
//
//	KEYS[1] P t:<openid>   KEYS[2] P u:<openid>   KEYS[3] P idx   KEYS[4] P pk:<openid>
//	ARGV[1] P s: (each session is ARGV[1] .. token hash)
var revokeScript = redis.NewScript(`
local n = 0
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. h)
  redis.call('ZREM', KEYS[3], h)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
return n
`)

// bindPhoneScript records a phone number on an existing user record; it
// answers 0 when there is none.
//
//	KEYS[1] P u:<openid>
//	ARGV[1] phone   ARGV[2] country code
var bindPhoneScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'phone', ARGV[1], 'country_code', ARGV[2])
return 1
`)

// countScript drops expired index entries and answers how many remain.
//
//	KEYS[1] P idx
//	ARGV[1] now (unix ms)
var countScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
`)
