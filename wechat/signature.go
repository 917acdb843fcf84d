package wechat

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
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

// UserStateSignature is WeChat's user-state signature (用户态签名) of data
// under sessionKey: the lower-case hex of HMAC-SHA256 keyed with the
// session_key string exactly as code2Session gave it (its base64 text,
// not the 16 bytes it decodes to). checkSessionKey and
// resetUserSessionKey sign "" this way; wx.requestVirtualPayment's
// signature and the virtual-payment server APIs sign their signData or
// request body.
//
// The key form is the one WeChat's own worked example fixes (its
// "用户登录态签名" page: hmac_sha256('{"foo":"bar"}',
// 'o0q0otL8aEzpcZL/FT9WsQ==') = 654571f7...): only the key as text gives
// that digest. A signature is derived from the key: treat it as a secret
// in logs.
func UserStateSignature(sessionKey, data string) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}
