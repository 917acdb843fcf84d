package wechattest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

// UserOfCode returns the user a code names and whether WeChat would take
// the code as well-formed. The user is everything before the first ':'
// ("alice:2" names alice). A code is malformed (40029) if it starts with
// "bad", contains white space or a control character, has an empty user
// part, or is longer than 128 bytes. The empty code is malformed too
// (the API answers it with 41008).
func UserOfCode(code string) (user string, ok bool) {
	if code == "" || len(code) > 128 || strings.HasPrefix(code, "bad") ||
		strings.ContainsFunc(code, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "", false
	}
	user, _, _ = strings.Cut(code, ":")
	return user, user != ""
}

// OpenID returns user's openid in this app: 28 characters, starting with
// "o", the same for the same (app id, user) in every Fake.
func (f *Fake) OpenID(user string) string { return openID(f.appID, user) }

func openID(appID, user string) string {
	sum := sha256.Sum256([]byte(appID + "\x00" + user))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

// SessionKey returns user's current session_key (base64 of 16 bytes), or
// "" if the user never logged in.
func (f *Fake) SessionKey(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.users[user]; u != nil {
		return u.sessionKey
	}
	return ""
}

// SetUnionID gives user a unionid, sent by every later login; "" removes
// it. By default users have none.
func (f *Fake) SetUnionID(user, unionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.user(user).unionID = unionID
}

// SetPhone sets user's phone number (purePhone, without country code) and
// country code (e.g. "86", "1"). By default a user has 138 followed by 8
// digits derived from the name, country code 86.
func (f *Fake) SetPhone(user, purePhone, countryCode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.user(user)
	u.phone, u.cc = purePhone, countryCode
}

// SetCountryCodeAsString makes getuserphonenumber send countryCode as a
// JSON string ("86") instead of WeChat's usual number (86).
func (f *Fake) SetCountryCodeAsString(asString bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ccAsString = asString
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

// phoneOf returns user's number, country code and display number. f.mu
// must be held.
func (f *Fake) phoneOf(name string) (pure, cc, display string) {
	u := f.user(name)
	pure, cc = u.phone, u.cc
	if pure == "" {
		sum := sha256.Sum256([]byte(name))
		pure = fmt.Sprintf("138%08d", binary.BigEndian.Uint64(sum[:8])%100000000)
	}
	if cc == "" {
		cc = "86"
	}
	display = pure
	if cc != "86" {
		display = "+" + cc + " " + pure
	}
	return pure, cc, display
}

// checkCode applies the code rules of the package doc, marking the code
// used in the namespace used. f.mu must be held.
func checkCode(code string, used map[string]bool) (user string, errcode int) {
	if code == "" {
		return "", 41008
	}
	user, ok := UserOfCode(code)
	if !ok {
		return "", 40029
	}
	if used[code] {
		return "", 40163
	}
	// The code is a piece of the request it came in (its query or body),
	// and the fake keeps every code it has seen: a copy keeps only the
	// code. In a storm of a million logins the request lines would stay
	// too, about 130 B each.
	code = strings.Clone(code)
	user, _ = UserOfCode(code)
	used[code] = true
	return user, 0
}

// code2Session is GET /sns/jscode2session.
func (f *Fake) code2Session(r *http.Request) answer {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case q.Get("appid") != f.appID:
		return fail(40013)
	case q.Get("secret") != f.secret:
		return fail(40125)
	case q.Get("grant_type") != "authorization_code":
		return fail(40002)
	}
	name, code := checkCode(q.Get("js_code"), f.usedLogin)
	if code != 0 {
		return fail(code)
	}
	u := f.user(name)
	body := map[string]any{"session_key": f.newSessionKey(u), "openid": openID(f.appID, name)}
	if u.unionID != "" {
		body["unionid"] = u.unionID
	}
	return answer{body: body}
}

// SetPhoneWatermarkAppID makes getuserphonenumber stamp phone_info's
// watermark with appID instead of the fake's own app id ("" restores
// that), for tests of a client's watermark check.
func (f *Fake) SetPhoneWatermarkAppID(appID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.phoneWMApp = appID
}

// phoneNumber is POST /wxa/business/getuserphonenumber.
//
// With an openid in the body, as WeChat documents it ("填入后会校验openid
// 和code的绑定关系"), a well-formed, unused code of another user is
// refused with 40003 (invalid openid; WeChat documents the check, not
// its errcode) and is not used up. Without one, any code is exchanged.
func (f *Fake) phoneNumber(r *http.Request) answer {
	var req struct {
		Code   string `json:"code"`
		OpenID string `json:"openid"`
	}
	decodeErr := json.NewDecoder(r.Body).Decode(&req)

	f.mu.Lock()
	defer f.mu.Unlock()
	// The token is checked first: a call refused for its token has not
	// used up its code, so the client can refresh and retry.
	if code := f.checkToken(r.URL.Query().Get("access_token")); code != 0 {
		return fail(code)
	}
	if decodeErr != nil {
		return fail(47001)
	}
	// A used code is 40163 whoever posts it; an unused one of another
	// user is refused without using it up.
	if owner, ok := UserOfCode(req.Code); ok && !f.usedPhone[req.Code] && req.OpenID != "" && req.OpenID != openID(f.appID, owner) {
		return fail(40003)
	}
	name, code := checkCode(req.Code, f.usedPhone)
	if code != 0 {
		return fail(code)
	}
	wmApp := f.appID
	if f.phoneWMApp != "" {
		wmApp = f.phoneWMApp
	}
	pure, cc, display := f.phoneOf(name)
	var ccJSON any = cc
	if !f.ccAsString && isDigits(cc) {
		ccJSON = json.Number(cc)
	}
	return answer{body: map[string]any{
		"errcode": 0,
		"errmsg":  "ok",
		"phone_info": map[string]any{
			"phoneNumber":     display,
			"purePhoneNumber": pure,
			"countryCode":     ccJSON,
			"watermark":       map[string]any{"timestamp": f.now().Unix(), "appid": wmApp},
		},
	}}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
