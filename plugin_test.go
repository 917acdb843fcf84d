package caddywechatauth

import (
	"os"
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

// TestBuildsOnMacOSAndWindows type-checks, with their tests, the
// packages whose code differs by system (the memory store's fdatasync:
// Go has it on Linux only; the CPU time its benchmarks read; redistest's
// SIGSTOP) for the systems Caddy ships to developers: a plugin that does
// not build on a developer's Mac breaks every xcaddy build there. Only
// those packages and what they import are checked (a minute or so a
// system with an empty build cache, seconds after).
func TestBuildsOnMacOSAndWindows(t *testing.T) {
	for _, goos := range []string{"darwin", "windows"} {
		t.Run(goos, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("go", "vet", "./caddymodule/store/memorystore/", "./caddymodule/internal/redistest/")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=%s go vet: %v\n%s", goos, err, out)
			}
		})
	}
}
