package alipaytest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// answer is what the gateway decided: an inner object, as raw JSON
// members in the order written, and whether Alipay would sign it.
type answer struct {
	isErr   bool
	members [][2]string // name, raw JSON value
	signed  bool
}

// msgOf is the gateway's msg for its public codes (公共错误码).
func msgOf(code string) string {
	switch code {
	case "20000":
		return "Service Currently Unavailable"
	case "20001":
		return "Insufficient Token Permissions"
	case "40001":
		return "Missing Required Arguments"
	case "40002":
		return "Invalid Arguments"
	case "40004":
		return "Business Failed"
	case "40006":
		return "Insufficient Permissions"
	}
	return "Unknown Error"
}

// subMsgOf is Alipay's sub_msg for the sub_codes the fake answers.
func subMsgOf(subCode string) string {
	switch subCode {
	case "isv.code-invalid":
		return "授权码code无效"
	case "isv.invalid-signature":
		return "验签出错"
	case "isv.invalid-app-id":
		return "无效的AppID参数"
	case "isv.invalid-method":
		return "不存在的方法名"
	case "isv.invalid-timestamp":
		return "非法的时间戳参数"
	case "isv.invalid-signature-type":
		return "无效的签名类型"
	case "isv.grant-type-invalid":
		return "grant_type参数不正确"
	case "isp.unknow-error":
		return "服务暂不可用（业务系统不可用）"
	case "aop.unknow-error":
		return "服务暂不可用（网关自身的未知错误）"
	}
	return "failure injected by alipaytest"
}

func gatewayError(code, subCode string) answer {
	return answer{isErr: true, signed: true, members: [][2]string{
		{"code", quote(code)}, {"msg", quote(msgOf(code))}, {"sub_code", quote(subCode)}, {"sub_msg", quote(subMsgOf(subCode))},
	}}
}

// handle checks a request as Alipay's gateway does, in its order: the
// common parameters, the sign, then the method's own.
func (f *Fake) handle(method string, p url.Values) answer {
	if method != http.MethodPost && method != http.MethodGet {
		return gatewayError("40002", "isv.invalid-method")
	}
	for _, k := range []string{"app_id", "method", "sign_type", "sign", "timestamp", "version"} {
		if p.Get(k) == "" {
			name := map[string]string{"sign_type": "signature-type", "sign": "signature", "app_id": "app-id"}[k]
			if name == "" {
				name = k
			}
			return gatewayError("40001", "isv.missing-"+name)
		}
	}
	switch {
	case p.Get("app_id") != f.appID:
		// Alipay cannot sign for an app it does not know.
		a := gatewayError("40002", "isv.invalid-app-id")
		a.signed = false
		return a
	case p.Get("sign_type") != "RSA2":
		return gatewayError("40002", "isv.invalid-signature-type")
	case !f.requestSignOK(p):
		return gatewayError("40002", "isv.invalid-signature")
	}
	if _, err := time.Parse("2006-01-02 15:04:05", p.Get("timestamp")); err != nil {
		return gatewayError("40002", "isv.invalid-timestamp")
	}
	if p.Get("method") != string(APICode2Session) {
		return gatewayError("40002", "isv.invalid-method")
	}
	return f.oauthToken(p)
}

// requestSignOK verifies the request's RSA2 sign with the app's public
// key over the sorted "k=v" pairs of every non-empty parameter but sign.
func (f *Fake) requestSignOK(p url.Values) bool {
	if f.appPub == nil {
		return false
	}
	var keys []string
	for k, v := range p {
		if k != "sign" && len(v) > 0 && v[0] != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + p.Get(k)
	}
	sig, err := base64.StdEncoding.DecodeString(p.Get("sign"))
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(strings.Join(pairs, "&")))
	return rsa.VerifyPKCS1v15(f.appPub, crypto.SHA256, sum[:], sig) == nil
}

// Sign returns the fake Alipay's RSA2 sign (standard base64) of content.
func (f *Fake) Sign(content []byte) string {
	sum := sha256.Sum256(content)
	sig, _ := rsa.SignPKCS1v15(nil, f.key, crypto.SHA256, sum[:])
	return base64.StdEncoding.EncodeToString(sig)
}

// AnswerBody returns a gateway answer {"<respKey>": inner, "sign": ...}
// with inner written exactly as given and signed by the fake Alipay: for
// tests that need an answer the fake would not give.
func (f *Fake) AnswerBody(respKey, inner string) string {
	return `{"` + respKey + `":` + inner + `,"sign":"` + f.Sign([]byte(inner)) + `"}`
}

// body writes an answer as Alipay does, the inner object first. The inner
// object is written with irregular spacing and escapes on purpose: its
// bytes are what the sign covers, so a client must verify them as they
// stand.
func (f *Fake) body(method string, a answer) string {
	key := strings.ReplaceAll(method, ".", "_") + "_response"
	if a.isErr || method == "" {
		key = "error_response"
	}
	var b strings.Builder
	b.WriteString("{")
	for i, m := range a.members {
		if i > 0 {
			b.WriteString([]string{",", ", ", " ,"}[i%3])
		}
		b.WriteString(quote(m[0]))
		b.WriteString([]string{":", " : ", ": "}[i%3])
		b.WriteString(m[1])
	}
	b.WriteString("}")
	inner := b.String()
	if !a.signed {
		return `{"` + key + `":` + inner + `}`
	}
	return `{"` + key + `":` + inner + `,"sign":"` + f.Sign([]byte(inner)) + `"}`
}

// quote writes s as a JSON string with every non-ASCII rune and '/'
// escaped (\u6388, \/), as Java encoders do and Go's does not.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\' || r == '/':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r >= utf8.RuneSelf:
			if r > 0xffff {
				r1, r2 := utf16Pair(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// oauthToken is alipay.system.oauth.token.
func (f *Fake) oauthToken(p url.Values) answer {
	if p.Get("grant_type") != "authorization_code" {
		return gatewayError("40002", "isv.grant-type-invalid")
	}
	code := p.Get("code")
	f.mu.Lock()
	defer f.mu.Unlock()
	name, err := f.users.Redeem(code)
	if err != nil {
		return gatewayError("40002", "isv.code-invalid")
	}
	tok := tokenOf(f.appID, code)
	// Key order as Alipay's samples have it, not sorted: a client that
	// re-encodes would change it.
	m := [][2]string{{"access_token", quote("authusrB" + tok)}}
	if f.openID {
		m = append(m, [2]string{"open_id", quote(f.openIDOf(name))})
	} else {
		m = append(m, [2]string{"alipay_user_id", quote(UserID(name))}, [2]string{"user_id", quote(UserID(name))})
	}
	m = append(m,
		[2]string{"expires_in", strconv.Itoa(1296000)},
		[2]string{"re_expires_in", strconv.Itoa(2592000)},
		[2]string{"refresh_token", quote("authusrR" + tok)},
		[2]string{"auth_start", quote(time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02 15:04:05"))},
	)
	return answer{signed: true, members: m}
}
