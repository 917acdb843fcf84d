package wechattest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
)

// RotateSessionKey gives user a new session_key behind the server's back,
// as WeChat does when a data pre-fetch (数据预拉取) or a wx.login whose code
// never reached the server makes a new login state: the old key is no
// longer valid (checksession answers 87009 for it, and open data is
// sealed with the new one). It returns the new key. A user who never
// logged in gets a first key.
func (f *Fake) RotateSessionKey(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newSessionKey(f.user(user))
}

// newSessionKey replaces u's key with a random one. f.mu must be held.
func (f *Fake) newSessionKey(u *user) string {
	var key [16]byte
	_, _ = rand.Read(key[:])
	u.sessionKey = base64.StdEncoding.EncodeToString(key[:])
	return u.sessionKey
}

// signature is WeChat's user-state signature of data under key: hex of
// HMAC-SHA256 keyed with the key's base64 text.
func signature(key, data string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

// checkUserState validates a call signed with a user-state signature of
// "" (checksession, resetusersessionkey) and returns the user it is for,
// or an errcode: the access token (41001, 40001, 42001), the openid
// (41009 missing, 40003 no user of this app with a session), sig_method
// (87008 unless hmac_sha256) and the signature (87009 unless made with
// the user's current key). f.mu must be held.
func (f *Fake) checkUserState(r *http.Request) (*user, int) {
	q := r.URL.Query()
	if code := f.checkToken(q.Get("access_token")); code != 0 {
		return nil, code
	}
	openid := q.Get("openid")
	if openid == "" {
		return nil, 41009
	}
	if q.Get("sig_method") != "hmac_sha256" {
		return nil, 87008
	}
	var u *user
	for name, cand := range f.users {
		if cand.sessionKey != "" && openID(f.appID, name) == openid {
			u = cand
			break
		}
	}
	if u == nil {
		return nil, 40003
	}
	if !hmac.Equal([]byte(q.Get("signature")), []byte(signature(u.sessionKey, ""))) {
		return nil, 87009
	}
	return u, 0
}

// checkSession is GET /wxa/checksession: {"errcode": 0, "errmsg": "ok"}
// when the signature was made with the user's current key.
func (f *Fake) checkSession(r *http.Request) answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, code := f.checkUserState(r); code != 0 {
		return fail(code)
	}
	return answer{body: map[string]any{"errcode": 0, "errmsg": "ok"}}
}

// resetSessionKey is GET /wxa/resetusersessionkey: the user gets a new
// key (the old one stops being valid) and the answer carries it with the
// openid.
func (f *Fake) resetSessionKey(r *http.Request) answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, code := f.checkUserState(r)
	if code != 0 {
		return fail(code)
	}
	return answer{body: map[string]any{
		"errcode":     0,
		"errmsg":      "ok",
		"openid":      r.URL.Query().Get("openid"),
		"session_key": f.newSessionKey(u),
	}}
}
