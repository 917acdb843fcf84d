package fakeplatform_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin/douyintest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou/kuaishoutest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq/qqtest"
)

type fake struct {
	name  string
	srv   *fakeplatform.Server
	login func(base, code string) (*http.Response, error)
}

func fakes(t *testing.T) []fake {
	q := qqtest.NewServer("app", "secret")
	d := douyintest.NewServer("app", "secret")
	k := kuaishoutest.NewServer("app", "secret")
	t.Cleanup(q.Close)
	t.Cleanup(d.Close)
	t.Cleanup(k.Close)
	return []fake{
		{"qq", q.Server, func(base, code string) (*http.Response, error) {
			return http.Get(base + "/sns/jscode2session?appid=app&secret=secret&grant_type=authorization_code&js_code=" + code)
		}},
		{"douyin", d.Server, func(base, code string) (*http.Response, error) {
			return http.Post(base+"/api/apps/v2/jscode2session", "application/json", strings.NewReader(`{"appid":"app","secret":"secret","code":"`+code+`"}`))
		}},
		{"kuaishou", k.Server, func(base, code string) (*http.Response, error) {
			return http.Post(base+"/oauth2/mp/code2session", "application/x-www-form-urlencoded", strings.NewReader("app_id=app&app_secret=secret&js_code="+code))
		}},
	}
}

func TestMockEndpoints(t *testing.T) {
	body := func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, f := range fakes(t) {
		base := f.srv.URL
		if st, b := body(http.Get(base + "/_mock/seal_phone?user=alice")); st != http.StatusConflict || !strings.Contains(b, "no_session") {
			t.Errorf("%s: seal before login: %d %s", f.name, st, b)
		}
		if st, b := body(f.login(base, "alice")); st != 200 || !strings.Contains(b, f.srv.SessionKey("alice")) {
			t.Errorf("%s: login: %d %s", f.name, st, b)
		}
		for _, r := range []struct {
			method, path, body string
			status             int
		}{
			{"GET", "/_mock/seal_phone?user=alice", "", 200},
			{"POST", "/_mock/seal?user=alice", `{"nickName":"A","n":1.50}`, 200},
			{"POST", "/_mock/seal?user=alice", `[1]`, 400},
			{"POST", "/_mock/seal", `{}`, 400},
			{"GET", "/_mock/seal?user=alice", "", 405},
			{"POST", "/_mock/seal_phone?user=alice", "", 405},
			{"GET", "/_mock/seal_phone", "", 400},
			{"GET", "/nowhere", "", 404},
		} {
			req, _ := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
			st, b := body(http.DefaultClient.Do(req))
			if st != r.status {
				t.Errorf("%s: %s %s = %d %s", f.name, r.method, r.path, st, b)
			}
			if st == 200 {
				var sealed struct{ EncryptedData, IV string }
				if json.Unmarshal([]byte(b), &sealed) != nil || sealed.EncryptedData == "" || sealed.IV == "" {
					t.Errorf("%s: %s: %s", f.name, r.path, b)
				}
			}
		}
		if st, b := body(http.Get(base + "/")); st != 200 || !strings.Contains(b, "NOT") {
			t.Errorf("%s: help: %d %q", f.name, st, b)
		}
		if f.name != "qq" {
			if st, _ := body(http.Get(base + "/api/apps/v2/jscode2session")); f.name == "douyin" && st != 405 {
				t.Errorf("douyin GET login: %d", st)
			}
		}
		if f.srv.OpenID("alice") != f.srv.OpenID("alice") || f.srv.OpenID("alice") == f.srv.OpenID("bob") {
			t.Errorf("%s: openids", f.name)
		}
	}
}
