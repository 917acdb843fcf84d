package fakeplatform

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
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
