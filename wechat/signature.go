package wechat

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// VerifySignature reports whether signature is the hex SHA-1 of
// rawData + sessionKey, as wx.getUserInfo returns it. Hex case is ignored.
//
// The comparison is constant-time so that the answer time does not reveal
// how many leading characters of a guess were right. (SHA-1 is WeChat's
// choice; it is a keyed check here, not a collision-resistance one.)
func VerifySignature(rawData, sessionKey, signature string) bool {
	sum := sha1.Sum([]byte(rawData + sessionKey))
	want := hex.EncodeToString(sum[:])
	got := strings.ToLower(signature)
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}
