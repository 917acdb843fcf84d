package baidutest_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
)

const (
	appKey = "WPGsbTTGEQ2VRnNcEIjyo5nT1wGxc3PZ"
	secret = "zkDSFBfXvHtmtMAsNrQ8sFN9DNLFNZE4"
)

type reply struct {
	status int
	raw    string
	body   map[string]string
}

func login(t *testing.T, srv *baidutest.Server, form url.Values) reply {
	t.Helper()
	resp, err := http.PostForm(srv.URL+"/oauth/jscode2sessionkey", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func form(code string) url.Values {
	return url.Values{"code": {code}, "client_id": {appKey}, "sk": {secret}}
}

func TestLogin(t *testing.T) {
	srv := baidutest.NewServer(appKey, secret)
	defer srv.Close()
	r := login(t, srv, form("alice"))
	key, _ := base64.StdEncoding.DecodeString(r.body["session_key"])
	if r.status != 200 || r.body["openid"] != srv.OpenID("alice") || len(key) != 24 || srv.SessionKey("alice") != r.body["session_key"] {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	for name, tt := range map[string]struct {
		form url.Values
		want string
	}{
		"reused":       {form("alice"), "invalid_grant"},
		"bad":          {form("bad"), "invalid_grant"},
		"no code":      {form(""), "invalid_request"},
		"wrong sk":     {url.Values{"code": {"x"}, "client_id": {appKey}, "sk": {"nope"}}, "invalid_client"},
		"wrong client": {url.Values{"code": {"x"}, "client_id": {"nope"}, "sk": {secret}}, "invalid_client"},
	} {
		if r := login(t, srv, tt.form); r.status != 400 || r.body["error"] != tt.want || r.body["error_description"] == "" {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	srv.FailNext(baidutest.APICode2Session, "invalid_client", 1)
	if r := login(t, srv, form("bob")); r.body["error"] != "invalid_client" {
		t.Errorf("FailNext: %s", r.raw)
	}
	if r := login(t, srv, form("bob")); r.status != 200 {
		t.Errorf("the code should not be used up by a failure: %s", r.raw)
	}
	if n := srv.Calls(baidutest.APICode2Session); n != 8 {
		t.Errorf("Calls = %d", n)
	}
}

// open decrypts as Baidu's page describes, independently of package baidu.
func open(t *testing.T, key, data, iv string) (body, tail string) {
	t.Helper()
	k, _ := base64.StdEncoding.DecodeString(key)
	d, _ := base64.StdEncoding.DecodeString(data)
	v, _ := base64.StdEncoding.DecodeString(iv)
	b, err := aes.NewCipher(k)
	if err != nil || len(v) != 16 || len(d)%32 != 0 {
		t.Fatalf("sizes: key %d, iv %d, data %d (Baidu pads to 32)", len(k), len(v), len(d))
	}
	cipher.NewCBCDecrypter(b, v).CryptBlocks(d, d)
	d = d[:len(d)-int(d[len(d)-1])]
	n := binary.BigEndian.Uint32(d[16:20])
	return string(d[20 : 20+n]), string(d[20+n:])
}

func TestSealAndMock(t *testing.T) {
	srv := baidutest.NewServer(appKey, secret)
	defer srv.Close()
	if _, _, err := srv.SealPhone("alice"); err == nil {
		t.Errorf("SealPhone before login")
	}
	resp, _ := http.Get(srv.URL + "/_mock/seal_phone?user=alice")
	resp.Body.Close()
	if resp.StatusCode != 409 {
		t.Errorf("seal_phone before login: %d", resp.StatusCode)
	}
	login(t, srv, form("alice"))
	resp, _ = http.Get(srv.URL + "/_mock/seal_phone?user=alice")
	var s struct{ EncryptedData, IV string }
	_ = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	body, tail := open(t, srv.SessionKey("alice"), s.EncryptedData, s.IV)
	if body != `{"mobile":"`+srv.Phone("alice")+`"}` || tail != appKey {
		t.Errorf("sealed %q + %q", body, tail)
	}
	resp, _ = http.Post(srv.URL+"/_mock/seal?user=alice", "application/json", strings.NewReader(`{"nickname":"Alice"}`))
	_ = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if body, _ := open(t, srv.SessionKey("alice"), s.EncryptedData, s.IV); body != `{"nickname":"Alice"}` {
		t.Errorf("seal: %q", body)
	}
	for path, want := range map[string]int{"/_mock/": 200, "/_mock/seal_phone": 400, "/nope": 404} {
		resp, _ := http.Get(srv.URL + path)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}
