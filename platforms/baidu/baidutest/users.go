package baidutest

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// UserOfCode returns the user a code names and whether Baidu would take
// the code as well-formed: the user is everything before the first ':'.
// A code is malformed if it is empty, starts with "bad", contains white
// space or a control character, has an empty user part, or is longer
// than 128 bytes.
// The rules are wechattest's, which every fake shares.
func UserOfCode(code string) (user string, ok bool) { return wechattest.UserOfCode(code) }

// OpenID returns user's openid in this app: 26 characters, the same for
// the same (App Key, user) in every Fake.
func (f *Fake) OpenID(user string) string {
	sum := sha256.Sum256([]byte(f.appKey + "\x00" + user))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:26]
}

// SessionKey returns user's current session_key (base64 of 24 bytes), or
// "" if the user never logged in.
func (f *Fake) SessionKey(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.users.Find(user); u != nil {
		return u.sessionKey
	}
	return ""
}

// SetPhone sets user's phone number (Baidu's "mobile"). By default a user
// has 150 followed by 8 digits derived from the name.
func (f *Fake) SetPhone(user, mobile string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users.Get(user).mobile = mobile
}

// Phone returns user's phone number.
func (f *Fake) Phone(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mobileOf(user)
}

// mobileOf returns user's number. f.mu must be held.
func (f *Fake) mobileOf(name string) string {
	if m := f.users.Get(name).mobile; m != "" {
		return m
	}
	return fakeplatform.DefaultPhone("150", name)
}

// code2Session is POST /oauth/jscode2sessionkey. The checks and their
// errors follow Baidu's OAuth error list: a missing parameter is
// invalid_request, a wrong client_id or sk invalid_client, a bad or used
// code invalid_grant.
func (f *Fake) code2Session(r *http.Request) answer {
	if err := r.ParseForm(); err != nil {
		return oauthError("invalid_request", "malformed form")
	}
	code, clientID, sk := r.PostForm.Get("code"), r.PostForm.Get("client_id"), r.PostForm.Get("sk")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case code == "" || clientID == "" || sk == "":
		return oauthError("invalid_request", "missing required parameter")
	case clientID != f.appKey || sk != f.secret:
		return oauthError("invalid_client", "unknown client id")
	}
	name, err := f.users.Redeem(code)
	if err != nil {
		return oauthError("invalid_grant", "Invalid authorization code")
	}
	u := f.users.Get(name)
	u.sessionKey = fakeplatform.NewSessionKey(24)
	return answer{body: map[string]any{"openid": f.OpenID(name), "session_key": u.sessionKey}}
}
