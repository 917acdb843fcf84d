package caddymodule

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
)

// A session token is 256 random bits in unpadded base64url: 43 characters.
const (
	tokenBytes  = 32
	tokenLength = 43
)

// newToken returns a fresh session token. 256 bits from the system CSPRNG
// make guessing any live token hopeless, however many there are.
func newToken() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// bearerToken extracts the token of an Authorization: Bearer header.
// present reports whether the client sent any Authorization header at all,
// even an empty one: an unusable header is an invalid token, never "no
// token", so it cannot slip through optional mode as anonymous. More than
// one Authorization value is unusable too: which one a server reads
// differs between servers.
func bearerToken(r *http.Request) (token string, present bool) {
	values, present := r.Header["Authorization"]
	if !present {
		return "", false
	}
	if len(values) != 1 {
		return "", true
	}
	auth := values[0]
	// The scheme is case-insensitive (RFC 9110 §11.1), but nearly every
	// client writes "Bearer ": one comparison before the folding one.
	const scheme = "bearer "
	if len(auth) <= len(scheme) || auth[:len(scheme)] != "Bearer " && !strings.EqualFold(auth[:len(scheme)], scheme) {
		return "", true
	}
	token = auth[len(scheme):]
	if !wellFormedToken(token) {
		return "", true
	}
	return token, true
}

// wellFormedToken rejects anything that cannot be one of our tokens before
// it is hashed and looked up, so junk never reaches the store.
//
// It runs on every authenticated request, so it reads a table instead of
// testing ranges, and ORs into four accumulators: the loads do not wait on
// one another, and a token costs no branch per byte. The loop is written
// so that the compiler proves every index in range (i < tokenLength-3,
// not i+3 < tokenLength, is the form it reads): a bounds check per byte
// was half of what the function cost.
func wellFormedToken(t string) bool {
	if len(t) != tokenLength {
		return false
	}
	var b0, b1, b2, b3 byte
	for i := 0; i < tokenLength-3; i += 4 {
		b0 |= notTokenByte[t[i]]
		b1 |= notTokenByte[t[i+1]]
		b2 |= notTokenByte[t[i+2]]
		b3 |= notTokenByte[t[i+3]]
	}
	for i := tokenLength &^ 3; i < tokenLength; i++ {
		b0 |= notTokenByte[t[i]]
	}
	return b0|b1|b2|b3 == 0
}

// notTokenByte is 1 for every byte outside the base64url alphabet.
var notTokenByte = func() (t [256]byte) {
	for c := range t {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			t[c] = 1
		}
	}
	return t
}()
