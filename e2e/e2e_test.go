// Package e2e builds the real Caddy binary with xcaddy from this checkout,
// starts it on Caddyfile.example and drives the demo over HTTP, the way a
// newcomer would with curl: with the test's own requests, and with the
// README's walkthrough itself, twice.
//
// The demo's ports (8080, 9001, 9002, admin 2019) are moved to free ones
// first, so the test runs beside a demo a reader left running.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

const (
	xcaddyVersion = "v0.4.5"
	caddyVersion  = "v2.11.9"
	modulePath    = "github.com/caddy-wechat-auth/caddy-wechat-auth"
	// unpublished is the version xcaddy is told for a checkout: the module
	// proxy does not know the module, and a replacement needs a version.
	unpublished = "v0.0.0-00010101000000-000000000000"
)

// buildWithXcaddy builds Caddy with this checkout as the plugin. The
// explicit pseudo-version lets xcaddy `go get` a module that is not
// published; the =path replaces it with the checkout.
func buildWithXcaddy(t *testing.T, repoRoot string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "caddy")
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "github.com/caddyserver/xcaddy/cmd/xcaddy@"+xcaddyVersion,
		"build", caddyVersion,
		"--output", out,
		"--with", modulePath+"@"+unpublished+"="+repoRoot,
		// The dev mock is a package of the same module, so the replacement
		// above serves it too; production builds leave this line out.
		"--with", modulePath+"/caddymodule/wechatmock@"+unpublished)
	cmd.Dir = repoRoot
	cmd.Env = xcaddyEnv(os.Environ(), raceEnabled)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("xcaddy build failed after %s: %v\n%s", time.Since(start).Round(time.Second), err, log.String())
	}
	t.Logf("xcaddy build: %s\n%s", time.Since(start).Round(time.Second), log.String())
	return out
}

// xcaddyEnv is the environment of the xcaddy build.
//
// GOPRIVATE: the module is not on the proxy; without it, resolving the
// mock's package path asks the proxy about <module>/caddymodule/wechatmock
// as a module of its own, and a proxy that answers 403 rather than 404
// stops the build.
//
// The compile settings are those of the `go test` run around it, so that
// the few hundred packages Caddy is made of come out of the build cache
// (GOCACHE is inherited) instead of being compiled a second time: on a
// fresh machine that second compile made this test take 6 to 8 minutes of
// a 13-minute first `go test ./...`; it now takes about 1.5.
// xcaddy's default flags (-trimpath, -tags nobadger,nomysql,nopgx) give
// every package another cache key; any XCADDY_GO_BUILD_FLAGS replaces
// them, and -ldflags only touches the final link. Under `go test -race`
// the binary is built with -race too (XCADDY_RACE_DETECTOR), which also
// puts the real binary under the race detector.
func xcaddyEnv(environ []string, race bool) []string {
	private := "github.com/caddy-wechat-auth"
	if v := os.Getenv("GOPRIVATE"); v != "" {
		private = v + "," + private
	}
	env := append(environ, "GOPRIVATE="+private, "XCADDY_GO_BUILD_FLAGS=-ldflags='-w -s'")
	if race {
		env = append(env, "XCADDY_RACE_DETECTOR=1")
	}
	return env
}

// demoPort is one of Caddyfile.example's fixed ports and the free one the
// test runs it on instead.
type demoPort struct {
	role string
	demo int
	port int
}

// demoPorts lists every port Caddyfile.example uses.
func demoPorts() []*demoPort {
	return []*demoPort{
		{role: "gateway", demo: 8080},
		{role: "wechat_mock", demo: 9001},
		{role: "demo upstream", demo: 9002},
		{role: "admin endpoint", demo: 2019},
	}
}

// pickPorts gives each demo port a distinct loopback port that is free now.
func pickPorts(t *testing.T, ports []*demoPort) {
	t.Helper()
	free, err := gatewaytest.FreePorts(len(ports))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ports {
		p.port = free[i]
	}
}

// exampleOnFreePorts is the checkout's Caddyfile.example with its ports
// moved to free ones, and those ports.
func exampleOnFreePorts(t *testing.T, root string) (string, []*demoPort) {
	t.Helper()
	example, err := os.ReadFile(filepath.Join(root, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	ports := demoPorts()
	pickPorts(t, ports)
	rewritten, err := rewritePorts(string(example), ports)
	if err != nil {
		t.Fatalf("Caddyfile.example: %v", err)
	}
	return rewritten, ports
}

// demoAddr matches a demo port where Caddyfile.example names one.
var demoAddr = regexp.MustCompile(`\b(localhost|127\.0\.0\.1):(\d+)\b`)

// rewritePorts moves every demo port of a Caddyfile (site addresses, the
// admin address, api_base, the reverse_proxy target) to the test's. It
// refuses a demo port left in a form it does not know, rather than let the
// test talk to a demo that happens to run.
func rewritePorts(caddyfile string, ports []*demoPort) (string, error) {
	byDemo := map[string]*demoPort{}
	for _, p := range ports {
		byDemo[strconv.Itoa(p.demo)] = p
	}
	out := demoAddr.ReplaceAllStringFunc(caddyfile, func(m string) string {
		sub := demoAddr.FindStringSubmatch(m)
		if p, ok := byDemo[sub[2]]; ok {
			return sub[1] + ":" + strconv.Itoa(p.port)
		}
		return m
	})
	for n, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, p := range ports {
			if regexp.MustCompile(`:` + strconv.Itoa(p.demo) + `\b`).MatchString(line) {
				return "", fmt.Errorf("line %d uses the demo's %s port %d in a form this test does not rewrite: %q", n+1, p.role, p.demo, line)
			}
		}
	}
	return out, nil
}

// checkFree names the port when something listens on it. A plain listen
// (no SO_REUSEPORT) fails even beside a Caddy, whose own listeners share a
// port with any other Caddy's without a word: that is how a test on the
// demo's ports ended up talking to a demo left running.
func checkFree(p *demoPort) error {
	for _, host := range []string{"127.0.0.1", "::1"} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p.port)))
		if err != nil {
			if host == "::1" && !errors.Is(err, syscall.EADDRINUSE) {
				continue // no IPv6 loopback on this machine
			}
			return fmt.Errorf("port %d (for the %s) is taken: %w", p.port, p.role, err)
		}
		l.Close()
	}
	return nil
}

// startCaddy runs bin on the Caddyfile, from dir, and returns once Caddy
// says it serves it and every port listens. If it exits first, the test
// fails with its reason (a port in use is named in it).
func startCaddy(t *testing.T, bin, dir, caddyfile string, ports []*demoPort) *gatewaytest.Process {
	t.Helper()
	for _, p := range ports {
		if err := checkFree(p); err != nil {
			t.Fatal(err)
		}
	}
	proc := gatewaytest.Run(t, gatewaytest.Options{Bin: bin, Dir: t.TempDir(), WorkDir: dir, Caddyfile: caddyfile})
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), 2*time.Second)
		if err != nil {
			t.Fatalf("caddy serves its config but nothing listens on port %d (the %s): %v", p.port, p.role, err)
		}
		c.Close()
	}
	return proc
}

func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func TestDemoWithXcaddyBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy with xcaddy; skipped with -short")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	walkthrough := readmeWalkthrough(t, root) // before the long build: a README without it fails at once
	bin := buildWithXcaddy(t, root)

	// The binary lists our modules.
	mods, err := exec.Command(bin, "list-modules").CombinedOutput()
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, mods)
	}
	for _, m := range []string{"http.handlers.wechat_auth", "http.handlers.wechat_mock", "wechat_auth.stores.memory", "wechat_auth.stores.redis"} {
		if !strings.Contains(string(mods), m) {
			t.Errorf("the xcaddy binary lacks module %s", m)
		}
	}

	rewritten, ports := exampleOnFreePorts(t, root)
	caddy := startCaddy(t, bin, root, rewritten, ports)
	gateway := "http://localhost:" + strconv.Itoa(ports[0].port)
	mock := "http://localhost:" + strconv.Itoa(ports[1].port)

	// No token: 401.
	if st, body := call(t, "GET", gateway+"/hello", "", nil); st != 401 || body["error"] != "unauthenticated" {
		t.Fatalf("anonymous: %d %v", st, body)
	}
	// Log in as alice against the mock.
	st, login := call(t, "POST", gateway+"/wechat/login", "", map[string]string{"code": "alice"})
	if st != 200 {
		t.Fatalf("login: %d %v", st, login)
	}
	token, _ := login["token"].(string)
	openid, _ := login["openid"].(string)
	if token == "" || openid == "" || login["unionid"] != "oUnion-alice-demo" {
		t.Fatalf("login answer: %v", login)
	}
	// Reach the demo upstream; a forged identity header is dropped.
	req, _ := http.NewRequest("GET", gateway+"/hello", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X_WeChat_OpenID", "forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if resp.StatusCode != 200 || up["upstream"] != "demo" || up["openid"] != openid || up["authorization"] != "" {
		t.Fatalf("upstream saw: %d %v", resp.StatusCode, up)
	}
	// Bind a phone with the new form (the mock's phone codes name users).
	st, phone := call(t, "POST", gateway+"/wechat/phone", token, map[string]string{"code": "alice"})
	if st != 200 || phone["purePhoneNumber"] == "" {
		t.Fatalf("phone: %d %v", st, phone)
	}
	st, up = call(t, "GET", gateway+"/hello", token, nil)
	if st != 200 || up["phone"] != phone["purePhoneNumber"] {
		t.Fatalf("upstream after phone binding: %d %v", st, up)
	}
	// And the legacy form, sealed by the mock with alice's session key.
	st, sealed := call(t, "GET", mock+"/_mock/seal_phone?user=alice", "", nil)
	if st != 200 {
		t.Fatalf("mock seal_phone: %d %v", st, sealed)
	}
	st, phone = call(t, "POST", gateway+"/wechat/phone", token, sealed)
	if st != 200 || phone["purePhoneNumber"] == "" {
		t.Fatalf("legacy phone: %d %v", st, phone)
	}
	// Log out.
	if st, _ := call(t, "POST", gateway+"/wechat/logout", token, nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st, _ := call(t, "GET", gateway+"/hello", token, nil); st != 401 {
		t.Fatalf("after logout: %d", st)
	}
	if !strings.Contains(caddy.Log(), "not for production") {
		t.Errorf("wechat_mock did not warn that it is not for production")
	}

	// The README's walkthrough, as a reader pastes it, twice: it must not
	// depend on codes of an earlier run (they are single use).
	for run := 1; run <= 2; run++ {
		t.Run(fmt.Sprintf("README walkthrough, run %d", run), func(t *testing.T) {
			runWalkthrough(t, walkthrough, gateway, mock)
		})
	}
}

// readmeWalkthrough returns the README's walkthrough: the ```sh block of
// its "Try it" section that sets GW (the gateway's address, which the
// test points at its own port).
func readmeWalkthrough(t *testing.T, root string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n## Try it")
	if start < 0 {
		t.Fatal(`README.md has no "## Try it" section`)
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	for _, block := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```").FindAllStringSubmatch(section, -1) {
		if strings.Contains(block[1], "GW=${GW:-") && strings.Contains(block[1], "MOCK=${MOCK:-") {
			return block[1]
		}
	}
	t.Fatal("README.md's \"Try it\" has no ```sh walkthrough that sets GW=${GW:-…} and MOCK=${MOCK:-…}")
	return ""
}

// runWalkthrough runs the walkthrough with bash, stopping at the first
// command that fails (-e, -o pipefail): each step checks its own answer.
func runWalkthrough(t *testing.T, script, gateway, mock string) {
	t.Helper()
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI (.ci/install-deps.sh installs it)", tool)
			}
			t.Skipf("%s is not installed: the README walkthrough needs it", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "GW="+gateway, "MOCK="+mock)
	out, err := cmd.CombinedOutput()
	t.Logf("the walkthrough printed:\n%s", out)
	if err != nil {
		t.Fatalf("the README walkthrough failed (%v); the last lines above show the step", err)
	}
	for _, want := range []string{`"token":"`, `"phone":"138`, "204", "401"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the walkthrough's output lacks %s", want)
		}
	}
	if bytes.Contains(out, []byte(`"openid":"admin"`)) {
		t.Errorf("the forged X_WeChat_OpenID reached the upstream")
	}
}
