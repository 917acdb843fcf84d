package alipaytest_test

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay/alipaytest"
)

const appID = "2021000000000000"

func newServer(t *testing.T) (*alipaytest.Server, *rsa.PrivateKey) {
	t.Helper()
	app, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := alipaytest.NewServer(appID, &app.PublicKey)
	t.Cleanup(srv.Close)
	return srv, app
}

// signed builds a request's form, signed here independently of package
// alipay.
func signed(t *testing.T, key *rsa.PrivateKey, p url.Values) url.Values {
	t.Helper()
	var keys []string
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, k+"="+p.Get(k))
	}
	sum := sha256.Sum256([]byte(strings.Join(pairs, "&")))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	p.Set("sign", base64.StdEncoding.EncodeToString(sig))
	return p
}

func params(code string) url.Values {
	return url.Values{
		"app_id": {appID}, "method": {"alipay.system.oauth.token"}, "format": {"JSON"}, "charset": {"utf-8"},
		"sign_type": {"RSA2"}, "timestamp": {time.Now().Format("2006-01-02 15:04:05")}, "version": {"1.0"},
		"grant_type": {"authorization_code"}, "code": {code},
	}
}

type reply struct {
	raw    string
	fields map[string]json.RawMessage
}

func post(t *testing.T, srv *alipaytest.Server, form url.Values) reply {
	t.Helper()
	resp, err := http.PostForm(srv.URL+"/gateway.do", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r reply
	r.raw = string(b)
	if err := json.Unmarshal(b, &r.fields); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	return r
}

// inner cuts the inner object out of the raw body, as Alipay's SDKs do.
func (r reply) inner(key string) string {
	i := strings.Index(r.raw, `"`+key+`":`)
	j := strings.LastIndex(r.raw, `,"sign":`)
	if i < 0 || j < 0 {
		return ""
	}
	return r.raw[i+len(key)+3 : j]
}

func subCode(r reply) string {
	var e struct {
		SubCode string `json:"sub_code"`
	}
	_ = json.Unmarshal(r.fields["error_response"], &e)
	return e.SubCode
}

func TestGateway(t *testing.T) {
	srv, app := newServer(t)
	r := post(t, srv, signed(t, app, params("alice")))
	inner := r.inner("alipay_system_oauth_token_response")
	var sign string
	_ = json.Unmarshal(r.fields["sign"], &sign)
	sig, _ := base64.StdEncoding.DecodeString(sign)
	sum := sha256.Sum256([]byte(inner))
	if rsa.VerifyPKCS1v15(srv.AlipayPublicKey(), crypto.SHA256, sum[:], sig) != nil {
		t.Fatalf("answer's sign does not verify over %q", inner)
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(inner))
	if compact.String() == inner {
		t.Errorf("the inner object is compact: a re-encoding would not change it: %s", inner)
	}
	var tok struct{ OpenID, UserID string }
	_ = json.Unmarshal([]byte(inner), &struct {
		OpenID *string `json:"open_id"`
		UserID *string `json:"user_id"`
	}{&tok.OpenID, &tok.UserID})
	if tok.OpenID != srv.OpenID("alice") || tok.UserID != "" {
		t.Errorf("identity %+v in %s", tok, inner)
	}

	if r := post(t, srv, signed(t, app, params("alice"))); subCode(r) != "isv.code-invalid" {
		t.Errorf("reuse: %s", r.raw)
	}
	bad := signed(t, app, params("bob"))
	bad.Set("code", "bob:2") // signed for another code
	if r := post(t, srv, bad); subCode(r) != "isv.invalid-signature" || r.fields["sign"] == nil {
		t.Errorf("bad sign: %s", r.raw)
	}
	other := params("carol")
	other.Set("app_id", "2021999")
	if r := post(t, srv, signed(t, app, other)); subCode(r) != "isv.invalid-app-id" || r.fields["sign"] != nil {
		t.Errorf("unknown app: %s", r.raw)
	}
	missing := params("dave")
	missing.Del("timestamp")
	if r := post(t, srv, signed(t, app, missing)); subCode(r) != "isv.missing-timestamp" {
		t.Errorf("missing timestamp: %s", r.raw)
	}
	if !strings.Contains(post(t, srv, signed(t, app, params("bad"))).raw, `\u6388\u6743`) {
		t.Errorf("sub_msg should be \\u-escaped")
	}
	srv.SetOpenIDScheme(false)
	r = post(t, srv, signed(t, app, params("erin")))
	if !strings.Contains(r.raw, alipaytest.UserID("erin")) || strings.Contains(r.raw, "open_id") {
		t.Errorf("user_id scheme: %s", r.raw)
	}
	if f := srv.LastForm(); f.Get("code") != "erin" {
		t.Errorf("LastForm: %v", f)
	}
}

func TestKnobs(t *testing.T) {
	srv, app := newServer(t)
	srv.FailNext(alipaytest.APICode2Session, "20000", "isp.unknow-error", 1)
	if r := post(t, srv, signed(t, app, params("alice"))); subCode(r) != "isp.unknow-error" {
		t.Errorf("FailNext: %s", r.raw)
	}
	if r := post(t, srv, signed(t, app, params("alice"))); r.fields["alipay_system_oauth_token_response"] == nil {
		t.Errorf("the code should not be used up by a failure: %s", r.raw)
	}
	srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json", `{"x":1}`)
	if r := post(t, srv, signed(t, app, params("bob"))); r.raw != `{"x":1}` {
		t.Errorf("RespondNext: %s", r.raw)
	}
	if n := srv.Calls(alipaytest.APICode2Session); n != 3 {
		t.Errorf("Calls = %d", n)
	}
}

func TestPhoneAndMock(t *testing.T) {
	srv, _ := newServer(t)
	resp, err := http.Get(srv.URL + "/_mock/seal_phone?user=alice")
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Response, Sign, Sign_type, Encrypt_type string }
	_ = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if p.Sign_type != "RSA2" || p.Encrypt_type != "AES" {
		t.Errorf("payload %+v", p)
	}
	sig, _ := base64.StdEncoding.DecodeString(p.Sign)
	sum := sha256.Sum256([]byte(`"` + p.Response + `"`))
	if rsa.VerifyPKCS1v15(srv.AlipayPublicKey(), crypto.SHA256, sum[:], sig) != nil {
		t.Errorf("sign is not over the quoted response")
	}
	ct, _ := base64.StdEncoding.DecodeString(p.Response)
	block, _ := aes.NewCipher(srv.AESKey())
	cipher.NewCBCDecrypter(block, make([]byte, 16)).CryptBlocks(ct, ct)
	ct = ct[:len(ct)-int(ct[len(ct)-1])]
	var plain struct{ Code, Mobile string }
	if json.Unmarshal(ct, &plain) != nil || plain.Code != "10000" || plain.Mobile != srv.Phone("alice") {
		t.Errorf("plaintext %q", ct)
	}

	resp, _ = http.Get(srv.URL + "/_mock/alipay_public_key")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	blk, _ := pem.Decode(b)
	if pub, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil || !pub.(*rsa.PublicKey).Equal(srv.AlipayPublicKey()) {
		t.Errorf("public key: %v", err)
	}
	for path, want := range map[string]int{"/_mock/": 200, "/_mock/seal_phone": 400, "/nope": 404} {
		resp, _ := http.Get(srv.URL + path)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}
