package caddymodule

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestAlipaySigned: a phone payload whose sign or ciphertext was touched
// is refused and binds nothing; the whole res.response text is taken as
// well as its two fields; /decrypt does not apply; the identity is open_id,
// or user_id for an app without one.
func TestAlipaySigned(t *testing.T) {
	p := newAlipay(t)
	a := p.start(t, "")
	tok := a.login("alice")

	response, sign := p.server.PhoneResponse("alice")
	tampered := []byte(sign)
	tampered[10] ^= 1
	for name, body := range map[string]map[string]string{
		"sign":     {"response": response, "sign": string(tampered)},
		"response": {"response": "A" + response[1:], "sign": sign},
		"no sign":  {"response": response},
	} {
		r := a.postJSON("/wechat/phone", tok, body)
		if r.status != 400 || (r.body["error"] != codeDecryptFailed && r.body["error"] != codeInvalidRequest) {
			t.Errorf("%s tampered: %d %s", name, r.status, r.raw)
		}
	}
	if s := a.do("GET", "/wechat/session", tok, "", nil); s.body["has_phone"] != false {
		t.Fatalf("a refused payload bound a phone: %s", s.raw)
	}
	r := a.postJSON("/wechat/phone", tok, map[string]string{"response": p.server.PhonePayload("alice")})
	if r.status != 200 || r.body["purePhoneNumber"] != p.server.Phone("alice") || r.body["countryCode"] != "" {
		t.Fatalf("the whole payload: %d %s", r.status, r.raw)
	}

	r = a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": "AAAA", "iv": "AAAA"})
	expectError(t, r, 400, codeInvalidRequest)
	if !strings.Contains(r.body["message"].(string), "no session-key sealed data") {
		t.Fatalf("decrypt on Alipay: %s", r.raw)
	}

	p.server.SetOpenIDScheme(false)
	if r := a.postJSON("/wechat/login", "", map[string]string{"code": "uma"}); r.status != 200 || r.body["openid"] == "" || r.body["openid"] == p.server.OpenID("uma") {
		t.Fatalf("user_id scheme: %d %s", r.status, r.raw)
	}
}

// TestAlipayConfigErrors: every unusable key setting is an error at start
// that names the setting and quotes no key.
func TestAlipayConfigErrors(t *testing.T) {
	p := newAlipay(t)
	dir := t.TempDir()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallFile := filepath.Join(dir, "small.pem")
	writeFile(t, smallFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, []byte("not a key"))
	cfg := func(priv, pub, aes string) map[string]string {
		return map[string]string{"app_private_key_file": priv, "alipay_public_key_file": pub, "aes_key": aes}
	}
	for _, c := range []struct {
		name   string
		module map[string]string
		secret string
		want   string
	}{
		{"missing private key", cfg(filepath.Join(dir, "none.pem"), p.pubFile, p.aesKey), "", "app_private_key_file"},
		{"private key not a key", cfg(garbage, p.pubFile, p.aesKey), "", "app_private_key_file"},
		{"public key as private", cfg(p.pubFile, p.pubFile, p.aesKey), "", "app_private_key_file"},
		{"private key too small", cfg(smallFile, p.pubFile, p.aesKey), "", "app_private_key_file"},
		{"private key as public", cfg(p.privateFile, p.privateFile, p.aesKey), "", "alipay_public_key_file"},
		{"no public key", cfg(p.privateFile, "", p.aesKey), "", "alipay_public_key_file"},
		{"bad aes key", cfg(p.privateFile, p.pubFile, "c2hvcnQ="), "", "aes_key"},
		{"unknown placeholder", cfg("{env.NO_SUCH_VAR_FOR_ALIPAY}", p.pubFile, p.aesKey), "", "app_private_key_file"},
		{"app secret", cfg(p.privateFile, p.pubFile, p.aesKey), "s3cret", "no app_secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			module := map[string]any{"name": "alipay"}
			for k, v := range c.module {
				module[k] = v
			}
			raw, _ := json.Marshal(module)
			err := provisionJSON(t, &Handler{AppID: p.appID, AppSecret: c.secret, PlatformRaw: raw})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
			if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), p.aesKey) {
				t.Fatalf("the error quotes a key: %v", err)
			}
		})
	}
	// A placeholder in a key path and in aes_key is resolved.
	t.Setenv("ALIPAY_TEST_KEY_FILE", p.privateFile)
	t.Setenv("ALIPAY_TEST_AES_KEY", p.aesKey)
	raw, _ := json.Marshal(cfg("{env.ALIPAY_TEST_KEY_FILE}", p.pubFile, "{env.ALIPAY_TEST_AES_KEY}"))
	raw = append([]byte(`{"name":"alipay",`), raw[1:]...)
	if err := provisionJSON(t, &Handler{AppID: p.appID, PlatformRaw: raw}); err != nil {
		t.Fatalf("placeholders: %v", err)
	}
}

// provisionJSON provisions h as Caddy would, and cleans it up.
func provisionJSON(t *testing.T, h *Handler) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.Provision(ctx)
	if err == nil {
		err = h.Validate()
	}
	_ = h.Cleanup()
	return err
}

// TestPlatformCaddyfile: the platform directive as SPEC shows it, and its
// errors at adapt time with the file and line.
func TestPlatformCaddyfile(t *testing.T) {
	parse := func(body string) (*Handler, error) {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("wechat_auth {\n" + body + "\n}"))
		return &h, err
	}
	h, err := parse("platform douyin\napp_id tt1234567890abcdef\napp_secret {env.DOUYIN_APP_SECRET}\napi_base http://127.0.0.1:9001")
	if err != nil || string(h.PlatformRaw) != `{"name":"douyin"}` {
		t.Fatalf("douyin: %v %s", err, h.PlatformRaw)
	}
	h, err = parse("platform alipay {\napp_private_key_file /etc/caddy/alipay/app-private.pem\nalipay_public_key_file /etc/caddy/alipay/alipay-public.pem\naes_key {env.ALIPAY_AES_KEY}\n}\napp_id 2021000000000000")
	want := `{"aes_key":"{env.ALIPAY_AES_KEY}","alipay_public_key_file":"/etc/caddy/alipay/alipay-public.pem","app_private_key_file":"/etc/caddy/alipay/app-private.pem","name":"alipay"}`
	if err != nil || string(h.PlatformRaw) != want {
		t.Fatalf("alipay: %v %s", err, h.PlatformRaw)
	}
	for _, c := range []struct{ body, want string }{
		{"platform line\napp_id x\napp_secret s", `unknown platform "line"`},
		{"platform\napp_id x\napp_secret s", "platform needs a name"},
		{"platform qq\nplatform qq\napp_id 1100000001\napp_secret s", "platform already specified"},
		{"platform qq extra\napp_id 1100000001\napp_secret s", "takes no arguments"},
		{"platform qq {\nfoo bar\n}\napp_id 1100000001\napp_secret s", "has no settings"},
		{"platform qq\napp_id wx1234567890abcdef\napp_secret s", "not a QQ app id"},
		{"app_id 1100000001\nplatform qq", "app_secret is required"},
		{"app_id 2021000000000000\napp_secret s\nplatform alipay {\napp_private_key_file a\nalipay_public_key_file b\n}", "Alipay has no app_secret"},
		{"platform alipay {\napp_private_key_file a\n}\napp_id 2021000000000000", "needs app_private_key_file and alipay_public_key_file"},
		{"platform alipay {\nsecret x\n}\napp_id 2021000000000000", "unrecognized platform alipay setting"},
		{"platform baidu\napp_id short\napp_secret s", "not a Baidu App Key"},
	} {
		if _, err := parse(c.body); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v, want %q with the file:line", c.body, err, c.want)
		}
	}
	// The app id is checked against the platform named after it, at its line.
	if _, err := parse("app_id 1100000001\napp_secret s\nplatform qq"); err != nil {
		t.Errorf("platform after app_id: %v", err)
	}
	if _, err := parse("app_secret s\napp_id bad\nplatform qq"); err == nil || !strings.Contains(err.Error(), "Testfile:3") {
		t.Errorf("app_id error at its line: %v", err)
	}
}

// TestUpstreamAPIIsWeChats: serve upstream (signature, check_session) on
// another platform is an error at start.
func TestUpstreamAPIIsWeChats(t *testing.T) {
	h := &Handler{AppID: "1109000000", AppSecret: "s", Serve: ServeUpstream, PlatformRaw: json.RawMessage(`{"name":"qq"}`)}
	if err := provisionJSON(t, h); err == nil || !strings.Contains(err.Error(), "serve upstream is WeChat's") {
		t.Fatalf("serve upstream on QQ: %v", err)
	}
}
