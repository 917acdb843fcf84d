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
	n   int32                      // cache entries pointing here; guarded by sharedStore.mu
	exp uint32                     // latest expiry of those, unix seconds rounded up; guarded by sharedStore.mu
}

// packedUser is an immutable store.User whose five strings share one
// buffer. A user record then costs two small allocations instead of up to
// six (the store.User struct and each string apart): about 50 bytes less
// per user, which at a million users is what keeps a session within 300
// bytes. Lookup slices the buffer, which allocates nothing.
type packedUser struct {
	buf  string   // openid, session key, unionid, phone, country code, back to back
	lens [4]uint8 // the lengths of the first four (WeChat's are 28, 24, 28, ≤ 20)
}

// maxField bounds each field of a user (lens are bytes).
const maxField = 1<<8 - 1

func packUser(u store.User) (*packedUser, error) {
	fields := [...]string{u.OpenID, u.SessionKey, u.UnionID, u.Phone, u.CountryCode}
	total := 0
	for _, f := range fields {
		if len(f) > maxField {
			return nil, fmt.Errorf("memory store: a user field of %d bytes is too long (at most %d)", len(f), maxField)
		}
		total += len(f)
	}
	// One copy of the caller's strings: the record never pins a larger
	// buffer they were sliced from.
	var b strings.Builder
	b.Grow(total)
	p := new(packedUser)
	for i, f := range fields {
		b.WriteString(f)
		if i < len(p.lens) {
			p.lens[i] = uint8(len(f))
		}
	}
	p.buf = b.String()
	return p, nil
}

func (p *packedUser) openID() string { return p.buf[:p.lens[0]] }

func (p *packedUser) user() store.User {
	a := int(p.lens[0])
	b := a + int(p.lens[1])
	c := b + int(p.lens[2])
	d := c + int(p.lens[3])
	return store.User{
		OpenID:      p.buf[:a],
		SessionKey:  p.buf[a:b],
		UnionID:     p.buf[b:c],
		Phone:       p.buf[c:d],
		CountryCode: p.buf[d:],
	}
}

// storeUser makes p the user of rec, keying s.users by p's own openid
// bytes so that an older buffer is not kept alive by the map key. The
// caller holds s.mu.
func (s *sharedStore) storeUser(rec *memUser, p *packedUser) {
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
