package wechattest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
)

// RevokeTokens makes every access token issued so far answer 40001. The
// next plain stable_token call issues a new one (unless
// SetStickyDeadToken).
func (f *Fake) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		t.revoked = true
	}
}

// SetTokenTTL sets the life of access tokens issued from now on (default
// DefaultTokenTTL, 7200 s). Expired tokens answer 42001.
func (f *Fake) SetTokenTTL(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d <= 0 {
		d = DefaultTokenTTL
	}
	f.tokenTTL = d
}

// SetStickyDeadToken makes a plain stable_token call keep handing out the
// current token even after RevokeTokens; only force_refresh: true then
// issues a new one. (The case a client's force_refresh rule is for.)
func (f *Fake) SetStickyDeadToken(sticky bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sticky = sticky
}

// ForceRefreshes returns how many stable_token calls had
// force_refresh: true (refused ones included). Like WeChat, the fake
// refuses all but the first 20 (45009).
func (f *Fake) ForceRefreshes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forced
}

// checkToken returns the errcode for a call made with access token tok, or
// 0. f.mu must be held.
func (f *Fake) checkToken(tok string) int {
	if tok == "" {
		return 41001
	}
	t := f.tokens[tok]
	switch {
	case t == nil || t.revoked:
		return 40001
	case !f.now().Before(t.expiry):
		return 42001
	}
	return 0
}

// stableToken is POST /cgi-bin/stable_token.
//
// Like WeChat's: a plain call returns the current token while it is
// valid (same token for every caller, with the seconds it has left); a
// forced call issues a new one and invalidates the old one.
func (f *Fake) stableToken(r *http.Request) answer {
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return fail(47001)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case req.GrantType != "client_credential":
		return fail(40002)
	case req.AppID != f.appID:
		return fail(40013)
	case req.Secret != f.secret:
		return fail(40125)
	}
	now := f.now()
	if req.ForceRefresh {
		if f.forced++; f.forced > maxForceRefresh {
			return fail(45009)
		}
		if cur := f.tokens[f.current]; cur != nil {
			cur.revoked = true
		}
		f.issue(now)
	} else if cur := f.tokens[f.current]; cur == nil || !now.Before(cur.expiry) || cur.revoked && !f.sticky {
		f.issue(now)
	}
	left := f.tokens[f.current].expiry.Sub(now)
	secs := int64((left + time.Second - 1) / time.Second) // round up, as a count of whole seconds left
	return answer{body: map[string]any{"access_token": f.current, "expires_in": secs}}
}

// issue makes a new current token. f.mu must be held.
func (f *Fake) issue(now time.Time) {
	var b [48]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	f.tokens[tok] = &issued{expiry: now.Add(f.tokenTTL)}
	f.current = tok
}
