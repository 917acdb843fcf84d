package baidutest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

// UserOfCode returns the user a code names and whether Baidu would take
// the code as well-formed: the user is everything before the first ':'.
// A code is malformed if it is empty, starts with "bad", contains white
// space or a control character, has an empty user part, or is longer
// than 128 bytes.
func UserOfCode(code string) (user string, ok bool) {
	if code == "" || len(code) > 128 || strings.HasPrefix(code, "bad") ||
		strings.ContainsFunc(code, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "", false
	}
	user, _, _ = strings.Cut(code, ":")
	return user, user != ""
}

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
	if u := f.users[user]; u != nil {
		return u.sessionKey
	}
	return ""
}

// SetPhone sets user's phone number (Baidu's "mobile"). By default a user
// has 150 followed by 8 digits derived from the name.
func (f *Fake) SetPhone(user, mobile string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.user(user).mobile = mobile
}

// Phone returns user's phone number.
func (f *Fake) Phone(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mobileOf(user)
}

// user returns the record of name, creating it. f.mu must be held.
func (f *Fake) user(name string) *user {
	u := f.users[name]
	if u == nil {
		u = &user{}
		f.users[name] = u
	}
	return u
}

// mobileOf returns user's number. f.mu must be held.
func (f *Fake) mobileOf(name string) string {
	if m := f.user(name).mobile; m != "" {
		return m
	}
	sum := sha256.Sum256([]byte(name))
	return fmt.Sprintf("150%08d", binary.BigEndian.Uint64(sum[:8])%100000000)
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
	name, ok := UserOfCode(code)
	if !ok || f.used[code] {
		return oauthError("invalid_grant", "Invalid authorization code")
	}
	f.used[code] = true
	var key [24]byte
	_, _ = rand.Read(key[:])
	u := f.user(name)
	u.sessionKey = base64.StdEncoding.EncodeToString(key[:])
	return answer{body: map[string]any{"openid": f.OpenID(name), "session_key": u.sessionKey}}
}
