package alipaytest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// UserOfCode returns the user a code names and whether the fake takes the
// code as well-formed: the user is everything before the first ':'. A
// code is malformed if it is empty, starts with "bad", contains white
// space or a control character, has an empty user part, or is longer
// than 128 bytes.
// The rules are wechattest's, which every fake shares.
func UserOfCode(code string) (user string, ok bool) { return wechattest.UserOfCode(code) }

// UserID returns user's Alipay user_id: 2088 followed by 12 digits, the
// same for the user in every app, as Alipay's is.
func UserID(user string) string {
	sum := sha256.Sum256([]byte("user\x00" + user))
	return fmt.Sprintf("2088%012d", binary.BigEndian.Uint64(sum[:8])%1000000000000)
}

// OpenID returns user's open_id in this app: 44 characters starting with
// "0", the same for the same (app id, user) in every Fake.
func (f *Fake) OpenID(user string) string { return f.openIDOf(user) }

func (f *Fake) openIDOf(user string) string {
	sum := sha256.Sum256([]byte(f.appID + "\x00" + user))
	return "0" + base64.RawURLEncoding.EncodeToString(sum[:])[:43]
}

func tokenOf(appID, code string) string {
	sum := sha256.Sum256([]byte(appID + "\x00token\x00" + code))
	return hex.EncodeToString(sum[:16])
}

// SetPhone sets user's phone number (Alipay's "mobile"). By default a
// user has 139 followed by 8 digits derived from the name.
func (f *Fake) SetPhone(user, mobile string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users.Get(user).mobile = mobile
}

// Phone returns user's phone number.
func (f *Fake) Phone(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.users.Find(user); u != nil && u.mobile != "" {
		return u.mobile
	}
	return fakeplatform.DefaultPhone("139", user)
}
