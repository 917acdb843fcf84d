package memorystore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// These tests run the real thing: Caddy built from ./cmd/caddy, with
// wechat_auth persisting to a file and a wechat_mock site playing WeChat,
// in a child process on free loopback ports, killed with SIGKILL.

const procApp = "wx00000000c0a50001"

// caddyBuild is cmd/caddy, built once for the tests of this package.
var caddyBuild gatewaytest.Build

func TestMain(m *testing.M) {
	code := m.Run()
	caddyBuild.Remove()
	os.Exit(code)
}

// gateway is a Caddy child process and its sites.
type gateway struct {
	t                 *testing.T
	dir, file, bin    string
	admin, port, mock int
	proc              *gatewaytest.Process
	client            *http.Client
	generation        int
	noPersist         bool   // the gateway without persist
	second            string // a second site's store block, for the same app on port2 ("": none)
	port2             int
}

func newGateway(t *testing.T) *gateway {
	dir := t.TempDir()
	return &gateway{t: t, dir: dir, file: filepath.Join(dir, "sessions.db"), bin: caddyBuild.Bin(t),
		admin: gatewaytest.FreePort(t), port: gatewaytest.FreePort(t), mock: gatewaytest.FreePort(t),
		client: &http.Client{Timeout: 10 * time.Second}}
}

// caddyfile is the config; generation changes the answer, so that a
// reload is a real change.
func (g *gateway) caddyfile() string {
	store := fmt.Sprintf("\t\tstore memory {\n\t\t\tpersist %s\n\t\t}\n", g.file)
	if g.noPersist {
		store = ""
	}
	sites := []gatewaytest.GatewaySite{{Port: g.port, Store: store, Respond: fmt.Sprintf("{http.auth.user.id} {http.auth.user.phone} gen%d", g.generation)}}
	if g.second != "" {
		sites = append(sites, gatewaytest.GatewaySite{Port: g.port2, Store: g.second, Respond: "{http.auth.user.id} second"})
	}
	return gatewaytest.MockedGateway{Admin: g.admin, Storage: filepath.Join(g.dir, "data"),
		AppID: procApp, AppSecret: "crash-test-secret", Mock: g.mock, Sites: sites}.Caddyfile()
}

// start runs the gateway on the current caddyfile the first time, and
// again on the same files (its Caddyfile as the last reload left it) after
// a kill. It returns once the gateway answers.
func (g *gateway) start() {
	g.t.Helper()
	if g.proc != nil {
		g.proc.MustRestart(g.t)
		return
	}
	tries := 0
	g.proc = gatewaytest.RunOnFreePorts(g.t, func() gatewaytest.Options {
		if tries++; tries > 1 { // the ports newGateway picked were taken
			g.admin, g.port, g.mock = gatewaytest.FreePort(g.t), gatewaytest.FreePort(g.t), gatewaytest.FreePort(g.t)
			if g.second != "" {
				g.port2 = gatewaytest.FreePort(g.t)
			}
		}
		return g.options()
	})
}

func (g *gateway) options() gatewaytest.Options {
	return gatewaytest.Options{
		Bin: g.bin, Dir: g.dir, Caddyfile: g.caddyfile(),
		Ready: func() bool { st, _ := g.get(""); return st == http.StatusUnauthorized },
	}
}

func (g *gateway) logs() string { return g.proc.Log() }

// reload loads the current caddyfile through the admin API.
func (g *gateway) reload() error {
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/load", g.admin), strings.NewReader(g.caddyfile()))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload: %d %s", resp.StatusCode, b)
	}
	// The Caddyfile says what runs: a restart after a kill runs it.
	return os.WriteFile(g.proc.CaddyfilePath(), []byte(g.caddyfile()), 0o600)
}

// kill is SIGKILL: nothing runs in the process after it.
func (g *gateway) kill() {
	g.t.Helper()
	if err := g.proc.Kill(); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gateway) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", g.port, path) }

func (g *gateway) do(method, url, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func (g *gateway) get(token string) (int, string) {
	st, body, _ := g.do("GET", g.url("/"), token, "")
	return st, body
}

// answered is a login the gateway answered: its token, the openid, and
// the fake's user the code named.
type answered struct{ token, openid, user string }

// login logs the user a code names in; ok is false when it was not
// answered 200.
func (g *gateway) login(code string) (answered, bool) {
	st, body, err := g.do("POST", g.url("/wechat/login"), "", fmt.Sprintf(`{"code":%q}`, code))
	if err != nil || st != http.StatusOK {
		return answered{}, false
	}
	var a struct{ Token, OpenID string }
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.Token == "" {
		return answered{}, false
	}
	user, _, _ := strings.Cut(code, ":")
	return answered{a.Token, a.OpenID, user}, true
}

func (g *gateway) mustLogin(code string) answered {
	g.t.Helper()
	a, ok := g.login(code)
	if !ok {
		g.t.Fatalf("login %q failed", code)
	}
	return a
}

// wantServed checks that token is served as openid (with the phone, when
// one is given).
func (g *gateway) wantServed(a answered, phone string) {
	g.t.Helper()
	st, body := g.get(a.token)
	if st != http.StatusOK || !strings.HasPrefix(body, a.openid+" "+phone) {
		g.t.Fatalf("token of %s: %d %q", a.openid, st, body)
	}
}

func (g *gateway) wantRefused(a answered) {
	g.t.Helper()
	if st, body := g.get(a.token); st != http.StatusUnauthorized {
		g.t.Fatalf("a dead token of %s answered %d %q", a.openid, st, body)
	}
}

// After a burst of logins, logouts, a revoke and a phone binding, all
// answered, the process is killed. After the restart every answered token
// works, with the phone bound, and no logged-out or revoked one does.
func TestProcessKillAfterAnsweredChanges(t *testing.T) {
	g := newGateway(t)
	g.start()

	var mu sync.Mutex
	var live []answered
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				// Some users log in twice: two sessions of one user.
				a, ok := g.login(fmt.Sprintf("user%d:%d", (w*25+i)%150, w*25+i))
				if !ok {
					t.Errorf("login %d/%d failed", w, i)
					return
				}
				mu.Lock()
				live = append(live, a)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Log some out, revoke a user, bind a phone: each answered.
	var dead []answered
	for _, a := range live[:20] {
		if st, _, err := g.do("POST", g.url("/wechat/logout"), a.token, ""); err != nil || st != http.StatusNoContent {
			t.Fatalf("logout: %d %v", st, err)
		}
		dead = append(dead, a)
	}
	live = live[20:]
	victim := live[0].openid
	req, _ := http.NewRequest("DELETE", fmt.Sprintf("http://127.0.0.1:%d/wechat_auth/users/%s", g.admin, victim), nil)
	resp, err := g.client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	var kept []answered
	for _, a := range live {
		if a.openid == victim {
			dead = append(dead, a)
		} else {
			kept = append(kept, a)
		}
	}
	phoneUser := kept[0]
	st, body, err := g.do("POST", g.url("/wechat/phone"), phoneUser.token, fmt.Sprintf(`{"code":%q}`, phoneUser.user+":phone"))
	if err != nil || st != http.StatusOK {
		t.Fatalf("phone: %d %s %v", st, body, err)
	}
	var ph struct{ PurePhoneNumber string }
	json.Unmarshal([]byte(body), &ph)
	g.kill() // right after the last answer

	g.start()
	for _, a := range kept {
		if a.openid == phoneUser.openid {
			g.wantServed(a, ph.PurePhoneNumber)
		} else {
			g.wantServed(a, "")
		}
	}
	for _, a := range dead {
		g.wantRefused(a)
	}
	if len(kept) < 100 || len(dead) < 21 {
		t.Fatalf("kept %d, dead %d: the test did less than it says", len(kept), len(dead))
	}
}

// A file damaged while the gateway was down (cut short, or a page that
// never reached the disk) is set aside with a log line; the gateway
// starts with no sessions and serves.
func TestProcessDamagedFileSetAside(t *testing.T) {
	for _, damage := range []string{"truncated", "torn"} {
		t.Run(damage, func(t *testing.T) {
			g := newGateway(t)
			g.start()
			var before answered
			for i := range 300 {
				before = g.mustLogin(fmt.Sprintf("u%d", i))
			}
			// Stopped, not killed: the journal is folded into the file,
			// so that the damage hits the sessions (after a kill they
			// are in the journal too, and come back from it).
			if err := g.proc.Stop(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(g.file)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "truncated":
				// Cut after bbolt's meta pages and one more: the
				// file, folded in one transaction at the stop, may
				// keep all its records in its first half.
				data = data[:3*4096]
			case "torn":
				// Every page after the first two (bbolt's meta pages)
				// half-written: its second half lost.
				for p := 2 * 4096; p+4096 <= len(data); p += 4096 {
					clear(data[p+2048 : p+4096])
				}
			}
			if err := os.WriteFile(g.file, data, 0o600); err != nil {
				t.Fatal(err)
			}

			g.start()
			g.wantRefused(before) // its sessions are gone with the file
			after := g.mustLogin("newcomer")
			g.wantServed(after, "")
			if !strings.Contains(g.logs(), "persist file set aside") {
				t.Fatalf("no log line about the file; log:\n%s", g.logs())
			}
			aside := setAsideFiles(t, g.file)
			if len(aside) != 1 || !strings.Contains(aside[0], ".corrupt-") {
				t.Fatalf("set aside: %v", aside)
			}
			if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, data) {
				t.Fatal("the file set aside is not the damaged file as it was")
			}
			// And the new file works across a restart.
			g.kill()
			g.start()
			g.wantServed(after, "")
		})
	}
}

// Two reloads while logins flow: every login answered, before, during or
// after them, keeps working, in the same process and after a kill.
func TestProcessReloadsWhileLoginsFlow(t *testing.T) {
	g := newGateway(t)
	g.start()
	stop := make(chan struct{})
	var mu sync.Mutex
	var got []answered
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A login cut by the reload is not answered, and not
				// counted: the client sends it again with a new code.
				if a, ok := g.login(fmt.Sprintf("flow%d-%d", w, i)); ok {
					mu.Lock()
					got = append(got, a)
					mu.Unlock()
				}
			}
		}()
	}
	reload := func() {
		g.generation++
		if err := g.reload(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	reload()
	time.Sleep(300 * time.Millisecond)
	reload()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(got) < 20 {
		t.Fatalf("only %d logins answered", len(got))
	}
	for _, a := range got {
		st, body := g.get(a.token)
		if st != http.StatusOK || !strings.HasSuffix(body, fmt.Sprintf("gen%d", g.generation)) {
			t.Fatalf("after the reloads, token of %s: %d %q", a.openid, st, body)
		}
	}
	g.kill()
	g.start()
	for _, a := range got {
		g.wantServed(a, "")
	}
	t.Logf("%d logins answered across two reloads, all kept", len(got))
}

// A reload that adds persist keeps every session, and writes them all to
// the file before it completes: a kill right after it loses none.
func TestProcessReloadAddsPersist(t *testing.T) {
	g := newGateway(t)
	g.noPersist = true
	g.start()
	var before []answered
	for i := range 50 {
		before = append(before, g.mustLogin(fmt.Sprintf("early%d", i)))
	}
	g.noPersist = false
	if err := g.reload(); err != nil {
		t.Fatal(err)
	}
	for _, a := range before {
		g.wantServed(a, "")
	}
	after := g.mustLogin("late")
	g.kill()
	g.start()
	for _, a := range append(before, after) {
		g.wantServed(a, "")
	}
}

// Two sites of one app share one store: a token from one works on the
// other. Giving them different store settings is refused, and the running
// config stays.
func TestProcessTwoSitesOfOneApp(t *testing.T) {
	g := newGateway(t)
	g.port2 = gatewaytest.FreePort(t)
	g.second = fmt.Sprintf("\t\tstore memory {\n\t\t\tpersist %s\n\t\t}\n", g.file)
	g.start()
	a := g.mustLogin("shared")
	st, body, err := g.do("GET", fmt.Sprintf("http://127.0.0.1:%d/", g.port2), a.token, "")
	if err != nil || st != http.StatusOK || body != a.openid+" second" {
		t.Fatalf("the second site of the app: %d %q %v", st, body, err)
	}
	for _, other := range []string{
		"", // the second site without persist
		fmt.Sprintf("\t\tstore memory {\n\t\t\tpersist %s.other\n\t\t}\n", g.file),
		fmt.Sprintf("\t\tstore memory {\n\t\t\tmax_sessions 10\n\t\t\tpersist %s\n\t\t}\n", g.file),
	} {
		g.second = other
		if other == "" {
			g.second = "\t\tstore memory\n"
		}
		err := g.reload()
		if err == nil || !strings.Contains(err.Error(), "differently") {
			t.Fatalf("conflicting settings %q: %v", other, err)
		}
	}
	g.wantServed(a, "")
}
