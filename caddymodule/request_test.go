package caddymodule

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func TestBadRequests(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("hank")
	big := `{"code":"` + strings.Repeat("a", 16<<10) + `"}`
	cases := []struct {
		name, method, path, ctype, body, token string
		status                                 int
		code                                   string
	}{
		{"login GET", "GET", "/wechat/login", "", "", "", 405, "method_not_allowed"},
		{"session POST", "POST", "/wechat/session", "application/json", "{}", tok, 405, "method_not_allowed"},
		{"logout GET", "GET", "/wechat/logout", "", "", tok, 405, "method_not_allowed"},
		{"no content type", "POST", "/wechat/login", "", `{"code":"x"}`, "", 415, "unsupported_media_type"},
		{"form content type", "POST", "/wechat/login", "application/x-www-form-urlencoded", "code=x", "", 415, "unsupported_media_type"},
		{"too large", "POST", "/wechat/login", "application/json", big, "", 413, "body_too_large"},
		{"not json", "POST", "/wechat/login", "application/json", "code=x", "", 400, "invalid_request"},
		{"empty body", "POST", "/wechat/login", "application/json", "", "", 400, "invalid_request"},
		{"array", "POST", "/wechat/login", "application/json", `["x"]`, "", 400, "invalid_request"},
		{"wrong type", "POST", "/wechat/login", "application/json", `{"code":42}`, "", 400, "invalid_request"},
		{"missing code", "POST", "/wechat/login", "application/json", `{}`, "", 400, "invalid_request"},
		{"trailing data", "POST", "/wechat/login", "application/json", `{"code":"x"} {}`, "", 400, "invalid_request"},
		{"control chars", "POST", "/wechat/login", "application/json", `{"code":"a\nb"}`, "", 400, "invalid_request"},
		{"deep nesting", "POST", "/wechat/login", "application/json", `{"code":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, "", 400, "invalid_request"},
		{"phone wrong types", "POST", "/wechat/phone", "application/json", `{"encryptedData":1,"iv":2}`, tok, 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			r := a.do(c.method, c.path, c.token, c.ctype, body)
			expectError(t, r, c.status, c.code)
			if c.status == 405 && r.header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
	// 16 KiB + 1, with a Content-Length and chunked (no length given).
	pad1 := 16<<10 + 1 - len(`{"code":"x","pad":""}`)
	over := `{"code":"x","pad":"` + strings.Repeat("a", pad1) + `"}`
	expectError(t, a.do("POST", "/wechat/login", "", "application/json", strings.NewReader(over)), 413, "body_too_large")
	expectError(t, a.do("POST", "/wechat/login", "", "application/json", io.MultiReader(strings.NewReader(over))), 413, "body_too_large")
	// Exactly 16 KiB is accepted (and fails on the code only).
	pad := 16<<10 - len(`{"code":"x","pad":""}`)
	exact := `{"code":"x","pad":"` + strings.Repeat("a", pad) + `"}`
	r := a.do("POST", "/wechat/login", "", "application/json", strings.NewReader(exact))
	if r.status == 413 {
		t.Fatalf("16 KiB exactly was refused")
	}
	if a.fake.Calls(wechattest.APICode2Session) != 2 { // hank, and the 16 KiB one
		t.Fatalf("bad requests reached WeChat: %d calls", a.fake.Calls(wechattest.APICode2Session))
	}
}

// An endpoint body trickling in one byte a second is
// cut after body_timeout (1s here) with 408 request_timeout, and the
// connection is closed rather than held. The bounds are generous: the
// body would take 40 s to arrive; the answer must come well before.
func TestSlowBodyIsCut(t *testing.T) {
	a := startGateway(t, "body_timeout 1s")
	tok := a.login("yara")
	for _, path := range []string{"/wechat/login", "/wechat/phone", "/wechat/decrypt"} {
		t.Run(path, func(t *testing.T) { trickle(t, path, tok) })
	}
	if n := a.fake.Calls(wechattest.APICode2Session); n != 1 {
		t.Fatalf("slow bodies reached WeChat: %d calls", n)
	}
}

// A server read timeout (read_body) that ends before body_timeout still
// ends it: the endpoint's deadline never loosens the server's, with
// Caddy's idle read timeout (which caps a handler's deadline itself) and
// without it (where the handler must).
func TestBodyTimeoutKeepsReadTimeout(t *testing.T) {
	for name, timeouts := range map[string]string{
		"idle reader":    "read_body 1s",
		"no idle reader": "read_body 1s\n\t\t\tread_body_idle -1s",
	} {
		t.Run(name, func(t *testing.T) {
			a := newApp(t)
			global := strings.Replace(globalOptions(), "skip_install_trust",
				"skip_install_trust\n\tservers {\n\t\ttimeouts {\n\t\t\t"+timeouts+"\n\t\t}\n\t}", 1)
			a.load(global + a.site("body_timeout 5m"))
			trickle(t, "/wechat/login", "")
		})
	}
}

// trickle posts a 40-byte body to path one byte a second and expects a
// 408 request_timeout well before the body could have arrived, on a
// connection the gateway then closes.
func trickle(t *testing.T, path, tok string) {
	t.Helper()
	conn, err := net.Dial("tcp", "localhost:9080")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const bodyLen = 40
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, tok, bodyLen)
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range bodyLen - 1 {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			if _, err := io.WriteString(conn, " "); err != nil {
				return // closed by the gateway
			}
		}
	}()

	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	var e errorBody
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusRequestTimeout || e.Error != "request_timeout" || e.Message == "" {
		t.Fatalf("slow body: %d %s, want 408 request_timeout", resp.StatusCode, body)
	}
	if elapsed > 20*time.Second {
		t.Fatalf("the slow body was answered after %v: the whole body was awaited", elapsed)
	}
	if !resp.Close {
		t.Errorf("the 408 does not close the connection")
	}
	// The gateway closes the connection: the next read ends (EOF or
	// reset), it does not run into our 30 s deadline.
	if _, err := br.ReadByte(); err == nil {
		t.Fatalf("the connection still delivers data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the gateway held the connection open: %v", err)
	}
}

// The deadline bounds the body only: a body that comes in time is served,
// and the connection it came on serves further requests after more than
// body_timeout of quiet.
func TestBodyDeadlineIsLifted(t *testing.T) {
	a := startGateway(t, "body_timeout 1s")
	conn, err := net.Dial("tcp", "localhost:9080")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	roundTrip := func(req string, parts ...string) (*http.Response, map[string]any) {
		t.Helper()
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(conn, p); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	body := `{"code":"zoe"}`
	resp, login := roundTrip("POST /wechat/login HTTP/1.1\r\nHost: localhost:9080\r\nContent-Type: application/json\r\n"+
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)), body[:5], body[5:])
	if resp.StatusCode != 200 {
		t.Fatalf("login with a body in two parts: %d %v", resp.StatusCode, login)
	}
	time.Sleep(1500 * time.Millisecond) // longer than body_timeout
	resp, sess := roundTrip("GET /wechat/session HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer " + login["token"].(string) + "\r\n\r\n")
	if resp.StatusCode != 200 || sess["openid"] != a.fake.OpenID("zoe") {
		t.Fatalf("the same connection after body_timeout: %d %v", resp.StatusCode, sess)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}
