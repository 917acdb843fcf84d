package fakeplatform

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// DefaultPhone is the number a fake gives user until told otherwise:
// prefix followed by 8 digits derived from the name.
func DefaultPhone(prefix, user string) string {
	sum := sha256.Sum256([]byte(user))
	return fmt.Sprintf("%s%08d", prefix, binary.BigEndian.Uint64(sum[:8])%100000000)
}

// NewSessionKey returns a fresh session key: standard base64 of n random
// bytes.
func NewSessionKey(n int) string {
	key := make([]byte, n)
	_, _ = rand.Read(key)
	return base64.StdEncoding.EncodeToString(key)
}

// Why Redeem refuses a login code.
var (
	// ErrBadCode: the code is malformed (see wechattest.UserOfCode).
	ErrBadCode = errors.New("fake: malformed code")
	// ErrUsedCode: the code was used before; every code works once.
	ErrUsedCode = errors.New("fake: code already used")
)

// Users are the records of a fake's users, of type U, made on first use,
// and the login codes used so far. The zero value is ready. Users are not
// safe for concurrent use: the fake's lock guards them.
type Users[U any] struct {
	records map[string]*U
	used    map[string]bool
}

// Get returns the record of name, making it if need be.
func (us *Users[U]) Get(name string) *U {
	if us.records == nil {
		us.records = map[string]*U{}
	}
	u := us.records[name]
	if u == nil {
		u = new(U)
		us.records[name] = u
	}
	return u
}

// Find returns the record of name, or nil if there is none.
func (us *Users[U]) Find(name string) *U { return us.records[name] }

// Redeem uses up a login code and returns the user it names, or
// ErrBadCode or ErrUsedCode (the code is then not used up).
func (us *Users[U]) Redeem(code string) (string, error) {
	name, ok := wechattest.UserOfCode(code)
	switch {
	case !ok:
		return "", ErrBadCode
	case us.used[code]:
		return "", ErrUsedCode
	}
	if us.used == nil {
		us.used = map[string]bool{}
	}
	us.used[code] = true
	return name, nil
}
