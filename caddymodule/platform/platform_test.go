package platform_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/alipay"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/baidu"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/douyin"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/kuaishou"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/qq"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/wechat"
)

// TestRegistered: the six platforms are modules with a complete Info, and
// no two share a header prefix (their default headers would collide).
func TestRegistered(t *testing.T) {
	infos, names := platform.Registered()
	if got := strings.Join(names, ","); got != "alipay,baidu,douyin,kuaishou,qq,wechat" {
		t.Fatalf("registered %s", got)
	}
	prefixes := map[string]string{}
	for _, name := range names {
		info := infos[name]
		if info.Title == "" || info.LoginCall == "" || !strings.HasPrefix(info.HeaderPrefix, "X-") || !strings.HasPrefix(info.APIBase, "https://") || info.CheckAppID == nil {
			t.Errorf("%s: incomplete %+v", name, info)
		}
		if other, dup := prefixes[strings.ToLower(info.HeaderPrefix)]; dup {
			t.Errorf("%s and %s share %s", name, other, info.HeaderPrefix)
		}
		prefixes[strings.ToLower(info.HeaderPrefix)] = name
		if info.NoSecret != (name == "alipay") {
			t.Errorf("%s: NoSecret %v", name, info.NoSecret)
		}
	}
	if h := platform.DefaultHeaders("X-QQ"); h != [5]string{"X-QQ-OpenID", "X-QQ-UnionID", "X-QQ-Phone", "X-QQ-Country-Code", "X-QQ-AppID"} {
		t.Fatalf("DefaultHeaders = %v", h)
	}
}

// TestAppIDs: each platform's check takes its own ids and refuses the
// others' and junk.
func TestAppIDs(t *testing.T) {
	infos, _ := platform.Registered()
	good := map[string]string{
		"wechat": "wx1234567890abcdef", "qq": "1109000000", "douyin": "tt1234567890abcdef",
		"kuaishou": "ks000000000000000000", "baidu": "0123456789abcdefABCDEF0123456789", "alipay": "2021000000000000",
	}
	for name, id := range good {
		if err := infos[name].CheckAppID(id); err != nil {
			t.Errorf("%s refuses %s: %v", name, id, err)
		}
		for _, bad := range []string{"", "has space", strings.Repeat("9", 65), "a\x00b"} {
			if infos[name].CheckAppID(bad) == nil {
				t.Errorf("%s takes %q", name, bad)
			}
		}
	}
	for _, c := range [][2]string{{"qq", "wx1234567890abcdef"}, {"alipay", "1109000000"}, {"baidu", "tt1234567890abcdef"}, {"wechat", "1109000000"}} {
		if infos[c[0]].CheckAppID(c[1]) == nil {
			t.Errorf("%s takes %s", c[0], c[1])
		}
	}
}

func TestSentinels(t *testing.T) {
	timeout, decrypt := errors.New("t"), errors.New("d")
	s := platform.Sentinels{Timeout: timeout, Decrypt: decrypt}
	for err, want := range map[error]platform.Kind{
		fmt.Errorf("x: %w", timeout): platform.Timeout,
		fmt.Errorf("x: %w", decrypt): platform.Decrypt,
		errors.New("other"):          platform.Unknown,
		nil:                          platform.Unknown,
	} {
		if got := s.Kind(err); got != want {
			t.Errorf("Kind(%v) = %v, want %v", err, got, want)
		}
	}
	for k := platform.Unknown; k <= platform.Watermark+1; k++ {
		if k.String() == "" {
			t.Errorf("kind %d has no name", k)
		}
	}
	if platform.InvalidCode.String() != "invalid_code" || platform.Kind(99).String() != "unknown" {
		t.Fatal("kind names")
	}
}
