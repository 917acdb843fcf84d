package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/wechatmock"
)

const (
	appID     = "wx0000000000006a0f"
	appSecret = "dashboard-check-secret"
)

// redisServer is a throwaway redis-server on a free loopback port.
type redisServer struct {
	addr string
	stop func()
}

func startRedis(t *testing.T, bin string) *redisServer {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, 10*time.Second, "redis-server to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return &redisServer{addr: addr, stop: stop}
}

// gateway is an in-process Caddy with a wechat_auth site on the Redis
// store, the mock WeChat, and an upstream, all on free ports.
type gateway struct {
	adminAddr, base, mock string
	client                *http.Client
	token                 string
}

func startGateway(t *testing.T, redisAddr string) *gateway {
	t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	gwPort, mockPort, upPort := freePort(t), freePort(t), freePort(t)
	cfg := fmt.Sprintf(`{
	admin %[1]s
	skip_install_trust
	persist_config off
	grace_period 1ms
	storage file_system %[7]s
}
http://127.0.0.1:%[2]d {
	wechat_auth {
		app_id %[5]s
		app_secret %[6]s
		api_base http://127.0.0.1:%[3]d
		refused_code_limit 2
		store redis {
			address %[8]s
			timeout 500ms
			cache_ttl 0
		}
	}
	reverse_proxy 127.0.0.1:%[4]d
}
http://127.0.0.1:%[3]d {
	wechat_mock {
		app_id %[5]s
		app_secret %[6]s
	}
}
http://127.0.0.1:%[4]d {
	respond "upstream" 200
}
`, admin, gwPort, mockPort, upPort, appID, appSecret, filepath.Join(t.TempDir(), "caddy"), redisAddr)
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfgJSON, warnings, err := adapter.Adapt([]byte(cfg), nil)
	if err != nil {
		t.Fatalf("adapting the gateway's Caddyfile: %v", err)
	}
	for _, w := range warnings {
		t.Logf("caddyfile: %s", w.String())
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("loading the gateway: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return &gateway{
		adminAddr: admin,
		base:      fmt.Sprintf("http://127.0.0.1:%d", gwPort),
		mock:      fmt.Sprintf("http://127.0.0.1:%d", mockPort),
		client:    &http.Client{Timeout: 10 * time.Second},
	}
}

// do sends one request and answers the status and the JSON body.
func (g *gateway) do(t *testing.T, method, url string, body any) (int, map[string]any) {
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
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, v
}

func (g *gateway) expect(t *testing.T, want int, method, path string, body any) map[string]any {
	t.Helper()
	got, v := g.do(t, method, g.base+path, body)
	if got != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, got, v, want)
	}
	return v
}

// traffic makes every series the dashboard shows while the store is up.
func (g *gateway) traffic(t *testing.T) {
	t.Helper()
	g.expect(t, http.StatusUnauthorized, "GET", "/app", nil) // unauthenticated
	login := g.expect(t, http.StatusOK, "POST", "/wechat/login", map[string]string{"code": "alice"})
	g.expect(t, http.StatusOK, "POST", "/wechat/login", map[string]string{"code": "alice"}) // retried
	g.token, _ = login["token"].(string)
	g.expect(t, http.StatusOK, "GET", "/app", nil) // authorized

	// A legacy phone payload, sealed by the mock with alice's key.
	status, sealed := g.do(t, "GET", g.mock+"/_mock/seal_phone?user=alice", nil)
	if status != http.StatusOK {
		t.Fatalf("mock seal_phone: %d %v", status, sealed)
	}
	g.expect(t, http.StatusOK, "POST", "/wechat/phone", sealed)

	// Refused codes, then the refused-code limit (2).
	token := g.token
	g.token = ""
	for _, code := range []string{"bad-1", "bad-2"} {
		g.expect(t, http.StatusUnauthorized, "POST", "/wechat/login", map[string]string{"code": code})
	}
	g.expect(t, http.StatusTooManyRequests, "POST", "/wechat/login", map[string]string{"code": "bad-3"})
	g.token = token
}

// storeOutageTraffic: with Redis gone, a pass-through is a 503 and a
// store error, never a 401.
func (g *gateway) storeOutageTraffic(t *testing.T) {
	t.Helper()
	g.expect(t, http.StatusServiceUnavailable, "GET", "/app", nil)
}
