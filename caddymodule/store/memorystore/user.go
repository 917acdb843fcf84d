package memorystore

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// memUser is the shared record of one user; every session of the user is
// a cache entry pointing here, so a new session_key or a bound phone is
// seen by all of the user's tokens at once. The user is never modified in
// place: an update stores a new one, so Lookup reads it without a lock.
type memUser struct {
	u   atomic.Pointer[packedUser] // nil once revoked: all its tokens are dead
	n   int32                      // cache entries pointing here; guarded by memoryStore.mu
	exp uint32                     // latest expiry of those, unix seconds rounded up; guarded by memoryStore.mu

	// gen tells this record from an earlier one of the same openid in the
	// persist file: a session there is restored only when its gen is its
	// user's. Revoking a user deletes its record from the file, and the
	// next login makes a record with a new gen, so the revoked sessions
	// still in the file are never restored. Immutable. (memUser is 24
	// bytes with or without it: Go's size class after 16 is 24.)
	gen uint64
}

// packedUser is an immutable store.User whose five strings share one buffer.
// A user record then costs two small allocations instead of up to six
// (the store.User struct and each string apart): about 50 bytes less per user,
// which at a million users is what keeps a session within ~300 bytes.
// Lookup slices the buffer, which allocates nothing.
type packedUser struct {
	buf  string    // openid, session key, unionid, phone, country code, back to back
	ends [4]uint16 // where each of the first four ends in buf
}

// maxPackedUser bounds the fields of one user together (WeChat's are
// well under 200 bytes); ends are uint16.
const maxPackedUser = 1<<16 - 1

func packUser(u store.User) (*packedUser, error) {
	fields := [...]string{u.OpenID, u.SessionKey, u.UnionID, u.Phone, u.CountryCode}
	total := 0
	for _, f := range fields {
		total += len(f)
	}
	if total > maxPackedUser {
		return nil, fmt.Errorf("memory store: user record of %d bytes is too large", total)
	}
	// One copy of the caller's strings: the record never pins a larger
	// buffer they were sliced from.
	var b strings.Builder
	b.Grow(total)
	p := new(packedUser)
	for i, f := range fields {
		b.WriteString(f)
		if i < len(p.ends) {
			p.ends[i] = uint16(b.Len())
		}
	}
	p.buf = b.String()
	return p, nil
}

func (p *packedUser) openID() string { return p.buf[:p.ends[0]] }

func (p *packedUser) user() store.User {
	return store.User{
		OpenID:      p.buf[:p.ends[0]],
		SessionKey:  p.buf[p.ends[0]:p.ends[1]],
		UnionID:     p.buf[p.ends[1]:p.ends[2]],
		Phone:       p.buf[p.ends[2]:p.ends[3]],
		CountryCode: p.buf[p.ends[3]:],
	}
}

// storeUser makes p the user of rec, keying s.users by p's own openid
// bytes so that an older buffer is not kept alive by the map key. The
// caller holds s.mu.
func (s *memoryStore) storeUser(rec *memUser, p *packedUser) {
	delete(s.users, p.openID())
	rec.u.Store(p)
	s.users[p.openID()] = rec
}

// unixCeil is t in whole unix seconds, rounded up (a record then lives at
// most a second longer than its last session, never shorter).
func unixCeil(t time.Time) uint32 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return uint32(sec)
}

// expired reports whether every session of rec has expired by now.
func (rec *memUser) expired(now time.Time) bool { return int64(rec.exp) < now.Unix() }
