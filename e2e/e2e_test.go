// Package e2e builds the real Caddy binary with xcaddy from this checkout,
// starts it on Caddyfile.example and drives the demo over HTTP, the way a
// newcomer would with curl.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	xcaddyVersion = "v0.4.5"
	caddyVersion  = "v2.11.9"
	modulePath    = "github.com/caddy-wechat-auth/caddy-wechat-auth"
	// unpublished is the version xcaddy is told for a checkout: the module
	// proxy does not know the module, and a replacement needs a version.
	unpublished = "v0.0.0-00010101000000-000000000000"
	gateway     = "http://localhost:8080"
	mock        = "http://localhost:9001"
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
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "github.com/caddyserver/xcaddy/cmd/xcaddy@"+xcaddyVersion,
		"build", caddyVersion,
		"--output", out,
		"--with", modulePath+"@"+unpublished+"="+repoRoot,
		// The dev mock is a package of the same module, so the replacement
		// above serves it too; production builds leave this line out.
		"--with", modulePath+"/caddymodule/wechatmock@"+unpublished)
	cmd.Dir = repoRoot
	// GOPRIVATE: the module is not on the proxy; without it, resolving
	// the mock's package path asks the proxy about
	// <module>/caddymodule/wechatmock as a module of its own, and a proxy
	// that answers 403 rather than 404 stops the build.
	cmd.Env = append(os.Environ(), "XCADDY_SKIP_CLEANUP=0", "GOPRIVATE=github.com/caddy-wechat-auth")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		t.Fatalf("xcaddy build failed: %v\n%s", err, log.String())
	}
	return out
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitForPort(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %s", addr, within)
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

	var logs syncBuffer
	cmd := exec.Command(bin, "run", "--config", "Caddyfile.example", "--adapter", "caddyfile")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", logs.String())
		}
	})
	for _, addr := range []string{"localhost:8080", "localhost:9001", "localhost:9002"} {
		waitForPort(t, addr, 30*time.Second)
	}

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
	if !strings.Contains(logs.String(), "not for production") {
		t.Errorf("wechat_mock did not warn that it is not for production")
	}
}
