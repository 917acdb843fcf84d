package caddymodule

// The harness of the platform tests: one fake server per platform behind
// the in-process gateway, each described by a platformFake so that one
// test walks every platform.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay/alipaytest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin/douyintest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou/kuaishoutest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq/qqtest"
)

// platformFake is one platform's fake server API for one app.
type platformFake struct {
	name, prefix string // module name, header prefix
	appID, url   string
	// block is what goes inside wechat_auth for this platform: the
	// platform line (and block) and the app secret where there is one.
	block string
	// hasCountryCode: the platform's phone numbers carry one ("86").
	hasCountryCode bool
	openID         func(user string) string
	// phoneBody is the /phone body the mini program would send for user,
	// and the number it holds.
	phoneBody func(t *testing.T, user string) (map[string]string, string)
	// seal seals open data under user's current session key; nil on a
	// platform without session-key sealed data.
	seal func(user string, payload map[string]any) (encryptedData, iv string, err error)
	// refuseNext makes the platform refuse the next login code.
	refuseNext func()
	calls      func() int
}

// platformFakes are the fakes of every platform but WeChat (whose tests
// are the rest of the package).
func platformFakes(t *testing.T) []*platformFake {
	return []*platformFake{newQQFake(t), newDouyinFake(t), newKuaishouFake(t), newBaiduFake(t), newAlipayFake(t)}
}

func (p *platformFake) site(extra, upstream string) string {
	return fmt.Sprintf(`
http://localhost:9080 {
	wechat_auth {
		%s
		app_id %s
		api_base %s
		timeout 2s
		%s
	}
	reverse_proxy %s
}
`, p.block, p.appID, p.url, extra, strings.TrimPrefix(upstream, "http://"))
}

// start loads a gateway of the platform (extra inside wechat_auth) in front
// of an echoing upstream.
func (p *platformFake) start(t *testing.T, extra string) *testApp {
	t.Helper()
	a := &testApp{
		t:        t,
		tester:   caddytest.NewTester(t),
		appID:    p.appID,
		upstream: echoUpstream(t).URL,
		client:   &http.Client{Timeout: 10 * time.Second},
	}
	a.load(globalOptions() + p.site(extra, a.upstream))
	return a
}

// header is the platform's default header name for field ("OpenID", ...).
func (p *platformFake) header(field string) string { return p.prefix + "-" + field }

func sealedPhone(enc, iv string, err error) map[string]string {
	if err != nil {
		panic(err)
	}
	return map[string]string{"encryptedData": enc, "iv": iv}
}

func newQQFake(t *testing.T) *platformFake {
	appID := fmt.Sprintf("11%08d", appSeq.Add(1))
	f := qqtest.NewServer(appID, testSecret)
	t.Cleanup(f.Close)
	return &platformFake{
		name: "qq", prefix: "X-QQ", appID: appID, url: f.URL, hasCountryCode: true,
		block:  "platform qq\n\t\tapp_secret " + testSecret,
		openID: f.OpenID,
		phoneBody: func(t *testing.T, user string) (map[string]string, string) {
			f.SetPhone(user, "13700000001", "86")
			return sealedPhone(f.SealPhone(user)), "13700000001"
		},
		seal:       f.Seal,
		refuseNext: func() { f.FailNext(qqtest.CodeInvalidCode, 1) },
		calls:      f.Calls,
	}
}

func newDouyinFake(t *testing.T) *platformFake {
	appID := fmt.Sprintf("tt%016x", appSeq.Add(1))
	f := douyintest.NewServer(appID, testSecret)
	t.Cleanup(f.Close)
	return &platformFake{
		name: "douyin", prefix: "X-Douyin", appID: appID, url: f.URL, hasCountryCode: true,
		block:  "platform douyin\n\t\tapp_secret " + testSecret,
		openID: f.OpenID,
		phoneBody: func(t *testing.T, user string) (map[string]string, string) {
			f.SetPhone(user, "13700000002", "86")
			return sealedPhone(f.SealPhone(user)), "13700000002"
		},
		seal:       f.Seal,
		refuseNext: func() { f.FailNext(douyintest.CodeBadCode, 1) },
		calls:      f.Calls,
	}
}

func newKuaishouFake(t *testing.T) *platformFake {
	appID := fmt.Sprintf("ks%016d", appSeq.Add(1))
	f := kuaishoutest.NewServer(appID, testSecret)
	t.Cleanup(f.Close)
	return &platformFake{
		name: "kuaishou", prefix: "X-Kuaishou", appID: appID, url: f.URL, hasCountryCode: true,
		block:  "platform kuaishou\n\t\tapp_secret " + testSecret,
		openID: f.OpenID,
		phoneBody: func(t *testing.T, user string) (map[string]string, string) {
			f.SetPhone(user, "13700000003", "86")
			return sealedPhone(f.SealPhone(user)), "13700000003"
		},
		seal:       f.Seal,
		refuseNext: func() { f.FailNext(kuaishoutest.ResultBadParameter, 1) },
		calls:      f.Calls,
	}
}

func newBaiduFake(t *testing.T) *platformFake {
	appKey := fmt.Sprintf("BaiduAppKey%021d", appSeq.Add(1))
	f := baidutest.NewServer(appKey, testSecret)
	t.Cleanup(f.Close)
	return &platformFake{
		name: "baidu", prefix: "X-Baidu", appID: appKey, url: f.URL,
		block:  "platform baidu\n\t\tapp_secret " + testSecret,
		openID: f.OpenID,
		phoneBody: func(t *testing.T, user string) (map[string]string, string) {
			return sealedPhone(f.SealPhone(user)), f.Phone(user)
		},
		seal:       f.Seal,
		refuseNext: func() { f.FailNext(baidutest.APICode2Session, "invalid_grant", 1) },
		calls:      func() int { return f.Calls(baidutest.APICode2Session) },
	}
}

// alipayKeys writes a fresh app key pair into dir: the private key (PKCS#8
// PEM) for the gateway and its public half for the fake.
func alipayKeys(t *testing.T, dir string) (privateFile string, public *rsa.PublicKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	privateFile = filepath.Join(dir, "app-private.pem")
	writeFile(t, privateFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return privateFile, &key.PublicKey
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// alipayFake is the Alipay fake with what its tests reach beyond the rest.
type alipayFake struct {
	*platformFake
	server               *alipaytest.Server
	privateFile, pubFile string
	aesKey               string
}

func newAlipay(t *testing.T) *alipayFake {
	dir := t.TempDir()
	appID := fmt.Sprintf("2021%012d", appSeq.Add(1))
	privateFile, public := alipayKeys(t, dir)
	f := alipaytest.NewServer(appID, public)
	t.Cleanup(f.Close)
	pubFile := filepath.Join(dir, "alipay-public.pem")
	writeFile(t, pubFile, f.AlipayPublicKeyPEM())
	aes := base64.StdEncoding.EncodeToString(f.AESKey())
	a := &alipayFake{server: f, privateFile: privateFile, pubFile: pubFile, aesKey: aes}
	a.platformFake = &platformFake{
		name: "alipay", prefix: "X-Alipay", appID: appID, url: f.URL,
		block: fmt.Sprintf("platform alipay {\n\t\t\tapp_private_key_file %s\n\t\t\talipay_public_key_file %s\n\t\t\taes_key %s\n\t\t}",
			privateFile, pubFile, aes),
		openID: f.OpenID,
		phoneBody: func(t *testing.T, user string) (map[string]string, string) {
			response, sign := f.PhoneResponse(user)
			return map[string]string{"response": response, "sign": sign}, f.Phone(user)
		},
		refuseNext: func() { f.FailNext(alipaytest.APICode2Session, "40002", "isv.code-invalid", 1) },
		calls:      func() int { return f.Calls(alipaytest.APICode2Session) },
	}
	return a
}

func newAlipayFake(t *testing.T) *platformFake { return newAlipay(t).platformFake }
