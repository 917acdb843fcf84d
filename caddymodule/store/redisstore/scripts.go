package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts of the store. Every script declares every key it
// touches in KEYS, and the keys of one script share a hash slot (the
// user's keys carry the openid as their hash tag, {<openid>}), so every
// script runs on Redis Cluster as on a single server. What spans slots
// (a user's sessions lie in slots of their own) is done in steps from
// Go, each step safe to interleave with any other; the methods that
// take them (sessions.go, users.go) say how. TestRedisStoreScriptsDeclareKeys
// reads every script of the package and its callers to hold this.
//
// P below is the store's prefix (key_prefix + app id + ":").
//
// A session copy (P s:<token hash>) is one string, fields separated by
// NUL bytes: version, expiry (unix ms), openid, unionid, session key,
// phone, country code. The version is the user record's version when
// the copy was written; a copy is only ever replaced by one of a higher
// version, so rewrites that cross each other never go backwards.

// prelude holds the helpers the scripts share.
const prelude = `
local function nextVersion(old)
  local t = redis.call('TIME')
  local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local o = tonumber(old or '0') or 0
  if v <= o then v = o + 1 end
  return string.format('%.0f', v)
end

-- liveTokens drops the user's expired tokens from the token index and
-- answers the others (hash, expiry, hash, expiry, ...) except skip, and
-- the latest expiry of all.
local function liveTokens(tkey, now, skip)
  local all = redis.call('HGETALL', tkey)
  local live, maxexp = {}, 0
  for i = 1, #all, 2 do
    local exp = tonumber(all[i + 1])
    if exp <= now then
      redis.call('HDEL', tkey, all[i])
    else
      if exp > maxexp then maxexp = exp end
      if all[i] ~= skip then
        live[#live + 1] = all[i]
        live[#live + 1] = all[i + 1]
      end
    end
  end
  return live, maxexp
end

local function userFields(ukey)
  local u = redis.call('HMGET', ukey, 'openid', 'unionid', 'session_key', 'phone', 'country_code')
  for i = 1, 5 do u[i] = u[i] or '' end
  return u
end

-- userAnswer is what a script that changes a user answers: {version,
-- openid, unionid, session key, phone, country code, changed ("1" or
-- "0"), then tokens (hash, expiry, ...)}.
local function userAnswer(ukey, ver, changed, tokens)
  local out = userFields(ukey)
  table.insert(out, 1, ver)
  out[7] = changed and '1' or '0'
  for i = 1, #tokens do out[7 + i] = tokens[i] end
  return out
end
`

// createUserScript is the user's half of a login: it upserts the user
// record (keeping unionid and phone when the login has none), keeps the
// key it replaces for the grace, indexes the new token, drops expired
// ones, and stretches the record's and index's TTL to the user's latest
// session. The version changes only when the record does.
//
// It answers {version, openid, unionid, session key, phone, country code,
// changed ("1" or "0"), then the user's other live tokens as hash,
// expiry, hash, expiry, ...}: the session copies to rewrite.
//
//	KEYS[1] P u:{<openid>}   the user record (a hash, with its version "ver")
//	KEYS[2] P t:{<openid>}   the user's tokens: hash of token hash -> expiry (unix ms)
//	KEYS[3] P pk:{<openid>}  the session key the newest login replaced
//	ARGV[1] openid   ARGV[2] unionid ("" keeps)   ARGV[3] session key
//	ARGV[4] phone ("" keeps)   ARGV[5] country code
//	ARGV[6] token hash (hex)   ARGV[7] its expiry (unix ms)   ARGV[8] now (unix ms)
//	ARGV[9] key grace (ms; 0 keeps no previous key)
var createUserScript = redis.NewScript(prelude + createUserSrc)

const createUserSrc = `
local old = redis.call('HMGET', KEYS[1], 'session_key', 'unionid', 'phone', 'country_code', 'ver')
local changed = false
if not old[1] then
  redis.call('DEL', KEYS[3])
  changed = true
elseif old[1] ~= ARGV[3] then
  if tonumber(ARGV[9]) > 0 then
    redis.call('SET', KEYS[3], old[1], 'PX', ARGV[9])
  else
    redis.call('DEL', KEYS[3])
  end
  changed = true
end
if ARGV[2] ~= '' and ARGV[2] ~= old[2] then changed = true end
if ARGV[4] ~= '' and (ARGV[4] ~= old[3] or ARGV[5] ~= old[4]) then changed = true end
local ver = old[5]
if changed or not ver then
  ver = nextVersion(ver)
  redis.call('HSET', KEYS[1], 'openid', ARGV[1], 'session_key', ARGV[3], 'ver', ver)
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'unionid', ARGV[2]) end
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'phone', ARGV[4], 'country_code', ARGV[5]) end
end
redis.call('HSET', KEYS[2], ARGV[6], ARGV[7])
local others, maxexp = liveTokens(KEYS[2], tonumber(ARGV[8]), ARGV[6])
redis.call('PEXPIREAT', KEYS[1], maxexp)
redis.call('PEXPIREAT', KEYS[2], maxexp)
return userAnswer(KEYS[1], ver, changed, others)
`

// setCopyScript replaces a session copy by a newer version of it. It
// never creates one (a copy that is gone was logged out or revoked and
// stays gone) and never replaces a newer one; the copy keeps its TTL. It
// answers 1 when it wrote, 0 when the copy is gone, 2 when the copy was
// as new already.
//
//	KEYS[1] P s:<token hash>
//	ARGV[1] the new copy's version   ARGV[2] the new copy
var setCopyScript = redis.NewScript(setCopySrc)

const setCopySrc = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local i = string.find(v, '\0', 1, true)
local cur = i and tonumber(string.sub(v, 1, i - 1))
if cur and cur >= tonumber(ARGV[1]) then return 2 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
`

// deleteScript removes one session copy and announces it to every
// gateway in the same step, so that no gateway can read the copy after
// the announcement. It answers the copy it removed, or nil. A copy that
// is gone already is announced too: it may have left without a word (a
// maxmemory eviction, a write a failover lost) while gateways still
// cache it.
//
//	KEYS[1] P s:<token hash>
//	ARGV[1] the invalidation channel   ARGV[2] the announcement
var deleteScript = redis.NewScript(deleteSrc)

const deleteSrc = `
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
if not v then return false end
return v
`

// logoutEndScript ends a logout, after the session copy is deleted: it
// drops the token (and the expired ones) from the user's index, and the
// user record and previous key when no live token is left, as the memory
// store drops a user with its last session. It runs in the user's slot,
// as the login's createUserScript does, so a login racing the logout
// either indexed its token before (the record stays: it is the login's)
// or comes after, and starts a record afresh.
//
//	KEYS[1] P u:{<openid>}   KEYS[2] P t:{<openid>}   KEYS[3] P pk:{<openid>}
//	ARGV[1] now (unix ms)   ARGV[2] the token hash
var logoutEndScript = redis.NewScript(prelude + logoutEndSrc)

const logoutEndSrc = `
redis.call('HDEL', KEYS[2], ARGV[2])
local _, maxexp = liveTokens(KEYS[2], tonumber(ARGV[1]), '')
if maxexp == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
return 1
`

// revokeEndScript ends a revocation, after the session copies are
// deleted: it drops the revoked tokens (and the expired ones) from the
// user's index, and the user record and previous key when no token is
// left (a login that raced the revocation keeps its record), then
// announces the change.
//
//	KEYS[1] P u:{<openid>}   KEYS[2] P t:{<openid>}   KEYS[3] P pk:{<openid>}
//	ARGV[1] the invalidation channel   ARGV[2] the announcement
//	ARGV[3] now (unix ms)   ARGV[4...] the revoked token hashes
var revokeEndScript = redis.NewScript(prelude + revokeEndSrc)

const revokeEndSrc = `
for i = 4, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
local _, maxexp = liveTokens(KEYS[2], tonumber(ARGV[3]), '')
if maxexp == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
`

// bindPhoneScript records a phone number on the user record. It answers
// nil when the user has no live session, else {version, openid, unionid,
// session key, phone, country code, changed, then the live tokens as
// hash, expiry, ...}, as createUserScript.
//
//	KEYS[1] P u:{<openid>}   KEYS[2] P t:{<openid>}
//	ARGV[1] phone   ARGV[2] country code   ARGV[3] now (unix ms)
var bindPhoneScript = redis.NewScript(prelude + bindPhoneSrc)

const bindPhoneSrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local tokens, maxexp = liveTokens(KEYS[2], tonumber(ARGV[3]), '')
if maxexp == 0 then return false end
local cur = redis.call('HMGET', KEYS[1], 'phone', 'country_code', 'ver')
local changed = cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2]
local ver = cur[3]
if changed or not ver then
  ver = nextVersion(ver)
  redis.call('HSET', KEYS[1], 'phone', ARGV[1], 'country_code', ARGV[2], 'ver', ver)
end
return userAnswer(KEYS[1], ver, changed, tokens)
`

// countScript drops expired index entries and answers how many remain.
//
//	KEYS[1] P idx   sorted set of token hashes by expiry
//	ARGV[1] now (unix ms)
var countScript = redis.NewScript(countSrc)

const countSrc = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
`

// userScript reads the user record while the user has a live token. It
// writes nothing (an expired token stays in the index for the next
// change to drop). It answers nil when the user has no live session,
// else {openid, unionid, session key, phone, country code}.
//
//	KEYS[1] P u:{<openid>}   KEYS[2] P t:{<openid>}
//	ARGV[1] now (unix ms)
var userScript = redis.NewScript(prelude + userSrc)

const userSrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local all = redis.call('HGETALL', KEYS[2])
local now = tonumber(ARGV[1])
for i = 2, #all, 2 do
  if tonumber(all[i]) > now then return userFields(KEYS[1]) end
end
return false
`

// replaceKeyScript replaces the user's session key when it is still the
// one given, and drops the previous key. It answers nil when the user has
// no live session, else {version, openid, unionid, session key, phone,
// country code, changed ("1": replaced; "0": the key was another), then
// the live tokens as hash, expiry, ...}, as createUserScript.
//
//	KEYS[1] P u:{<openid>}   KEYS[2] P t:{<openid>}   KEYS[3] P pk:{<openid>}
//	ARGV[1] the old key   ARGV[2] the new key   ARGV[3] now (unix ms)
var replaceKeyScript = redis.NewScript(prelude + replaceKeySrc)

const replaceKeySrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local tokens, maxexp = liveTokens(KEYS[2], tonumber(ARGV[3]), '')
if maxexp == 0 then return false end
local cur = redis.call('HMGET', KEYS[1], 'session_key', 'ver')
if cur[1] ~= ARGV[1] then return userAnswer(KEYS[1], cur[2] or '0', false, tokens) end
local ver = nextVersion(cur[2])
redis.call('HSET', KEYS[1], 'session_key', ARGV[2], 'ver', ver)
redis.call('DEL', KEYS[3])
return userAnswer(KEYS[1], ver, true, tokens)
`
