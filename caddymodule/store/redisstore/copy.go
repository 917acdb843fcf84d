package redisstore

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// A session copy is what a pass-through look-up reads: everything the
// handler needs of a session in one string under the session's key, so
// that a look-up is one GET on every deployment (see scripts.go for the
// format). The user record stays the authority; the copies are rewritten
// from it on every change.

// provisional is the version of the copy a login writes before the user
// record knows the token (see CreateSession). Such a copy is never an
// answer: the token is not handed out before the real copy replaces it.
const provisional = "0"

const sep = "\x00"

var errBadCopy = errors.New("malformed session record")

// encodeCopy builds a session copy.
func encodeCopy(ver string, expiresAt time.Time, u store.User) string {
	var b strings.Builder
	b.Grow(len(ver) + 14 + len(u.OpenID) + len(u.UnionID) + len(u.SessionKey) + len(u.Phone) + len(u.CountryCode) + 6)
	b.WriteString(ver)
	b.WriteString(sep)
	b.WriteString(strconv.FormatInt(expiresAt.UnixMilli(), 10))
	for _, f := range [...]string{u.OpenID, u.UnionID, u.SessionKey, u.Phone, u.CountryCode} {
		b.WriteString(sep)
		b.WriteString(f)
	}
	return b.String()
}

// decodeCopy parses a session copy. The strings of the session point into
// v: one allocation (the reply) holds them all.
func decodeCopy(v string) (ver string, sess store.Session, err error) {
	var f [7]string
	for i := range 6 {
		var ok bool
		f[i], v, ok = strings.Cut(v, sep)
		if !ok {
			return "", store.Session{}, errBadCopy
		}
	}
	if strings.Contains(v, sep) {
		return "", store.Session{}, errBadCopy
	}
	f[6] = v
	ms, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || f[0] == "" {
		return "", store.Session{}, errBadCopy
	}
	return f[0], store.Session{
		User:      store.User{OpenID: f[2], UnionID: f[3], SessionKey: f[4], Phone: f[5], CountryCode: f[6]},
		ExpiresAt: time.UnixMilli(ms),
	}, nil
}

// checkFields refuses values that cannot be stored in a copy. WeChat's
// openids, unionids, base64 keys and digits never hold a NUL byte; a
// value that does is refused rather than allowed to shift the fields of
// a copy.
func checkFields(fields ...string) error {
	for _, f := range fields {
		if strings.Contains(f, sep) {
			return errors.New("redis store: a user field holds a NUL byte")
		}
	}
	return nil
}
