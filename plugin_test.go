package caddywechatauth

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestProductionBuildHasNoFake keeps the dev mock out of production
// builds: what `xcaddy build --with <this module>` links (this package and
// everything it imports) must hold neither the fake WeChat server
// (wechattest, wechatmock: they hand out a session for any code) nor
// net/http/httptest. `go list -deps` without -test lists exactly what a
// build links.
func TestProductionBuildHasNoFake(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 || !slices.Contains(deps, "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule") {
		t.Fatalf("go list gave %d packages, without caddymodule: the check below would prove nothing", len(deps))
	}
	for _, pkg := range deps {
		for _, banned := range []string{"net/http/httptest", "/wechat/wechattest", "/caddymodule/wechatmock", "/internal/redistest", "/store/storetest", "/internal/fakeplatform", "/internal/platformtest", "/qq/qqtest", "/douyin/douyintest", "/kuaishou/kuaishoutest", "/baidu/baidutest", "/alipay/alipaytest"} {
			if strings.HasSuffix(pkg, banned) || pkg == banned {
				t.Errorf("the production plugin links %s", pkg)
			}
		}
	}
}
