// Command memstore measures the memory store with a million persisted
// sessions in a real Caddy process (bench/memstore.sh builds Caddy and runs it):
//
//   - restart: a persist file of -sessions sessions is written (as a
//     reload that adds persist writes it), then Caddy (-caddy) is started
//     on it; the time from exec to the first 200 of an authenticated
//     request is the restart time;
//   - idle CPU: Caddy's CPU time (utime+stime from /proc/<pid>/stat) over
//     -idle with those sessions and no traffic, as seconds per minute;
//   - login latency: -logins sequential logins through the gateway (a
//     wechat_mock site of the same Caddy plays WeChat), with and without
//     the persist file, in the same run.
//
// Everything listens on free loopback ports; the files live in a
// temporary directory that is removed at the end.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/memorystore"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// sessions is -sessions.
var sessions = new(int)

const (
	appID  = "wx00000000be0c0002"
	secret = "bench-secret-for-the-mock-only"
)

// token is the i-th session token: 43 characters, as the gateway's own.
func token(i int) string { return fmt.Sprintf("bench-token-%031d", i) }

func main() {
	caddyBin := flag.String("caddy", "bench/out/caddy", "the Caddy binary (go build -o bench/out/caddy ./cmd/caddy)")
	flag.IntVar(sessions, "sessions", 1_000_000, "persisted sessions, each of its own user")
	idle := flag.Duration("idle", time.Minute, "how long to measure idle CPU")
	logins := flag.Int("logins", 300, "sequential logins timed, with and without persist")
	restarts := flag.Int("restarts", 3, "restarts timed (the median is reported)")
	keep := flag.String("dir", "", "keep the files in this directory, and reuse a persist file found there")
	flag.Parse()

	dir := *keep
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "memstore-bench-"); err != nil {
			fatal("%v", err)
		}
		defer os.RemoveAll(dir)
	}
	file := filepath.Join(dir, "wechat.db")

	if _, err := os.Stat(file); err != nil {
		t0 := time.Now()
		write(file, *sessions)
		say("wrote %d sessions in %v", *sessions, time.Since(t0).Round(time.Millisecond))
	}
	fi, err := os.Stat(file)
	if err != nil {
		fatal("%v", err)
	}
	say("persist file %s: %.0f MB", file, float64(fi.Size())/(1<<20))

	// Restart: exec to the first authenticated 200, a few times.
	var c *caddyProc
	var times []time.Duration
	for i := range *restarts {
		if c == nil {
			c = start(*caddyBin, dir, file)
		} else {
			c.stop()
			c.restart()
		}
		times = append(times, c.waitAuthenticated(token(*sessions/2)))
		c.checkAuthenticated(token(0))
		say("restart %d: first authenticated 200 after %v (process start to answer)", i+1, times[i].Round(time.Millisecond))
	}
	ready := q(times, .5)
	say("restart: median %v of %d", ready, len(times))

	// Idle CPU, after the start's work has settled.
	time.Sleep(5 * time.Second)
	cpu0, w0 := c.cpu(), time.Now()
	time.Sleep(*idle)
	cpu1, w1 := c.cpu(), time.Now()
	perMin := (cpu1 - cpu0).Seconds() / w1.Sub(w0).Minutes()
	say("idle: %.3f CPU seconds per minute (%.2f%% of a core) over %v; RSS %s", perMin, perMin/60*100, w1.Sub(w0).Round(time.Second), c.rss())

	on := c.loginLatencies(*logins)
	c.stop()

	c = start(*caddyBin, dir, "")
	c.waitUp()
	off := c.loginLatencies(*logins)
	c.stop()
	say("login, %d sequential, without persist: p50 %v p90 %v p99 %v", *logins, q(off, .5), q(off, .9), q(off, .99))
	say("login, %d sequential, with persist:    p50 %v p90 %v p99 %v (added at p50: %v)", *logins, q(on, .5), q(on, .9), q(on, .99), q(on, .5)-q(off, .5))
	fmt.Printf("restart_s=%.3f idle_cpu_s_per_min=%.3f login_p50_off_ms=%.3f login_p50_on_ms=%.3f file_mb=%.0f\n",
		ready.Seconds(), perMin, ms(q(off, .5)), ms(q(on, .5)), float64(fi.Size())/(1<<20))
}

// running is the Caddy child, killed by fatal on the way out.
var running *caddyProc

func fatal(format string, args ...any) {
	if running != nil {
		running.proc.Kill()
	}
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func q(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))].Round(time.Microsecond)
}

// write makes the persist file with n sessions of n users through the
// store module's own API: the sessions are made in memory, then a second
// config of the same app adds persist, which writes them all (a reload
// that adds persist does exactly that).
func write(file string, n int) {
	ctx1, cancel1 := caddy.NewContext(caddy.Context{Context: context.Background()})
	m1 := &memorystore.MemoryStore{MaxSessions: n + 1000}
	if err := m1.Provision(ctx1); err != nil {
		fatal("%v", err)
	}
	s, err := m1.Open(ctx1, appID)
	if err != nil {
		fatal("%v", err)
	}
	for i := range n {
		u := store.User{OpenID: fmt.Sprintf("oBench%022d", i), SessionKey: fmt.Sprintf("c2Vzc2lvbktleQ%08d==", i)}
		if _, err := s.CreateSession(context.Background(), store.HashToken(token(i)), u, 720*time.Hour, 0); err != nil {
			fatal("%v", err)
		}
	}
	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	m2 := &memorystore.MemoryStore{MaxSessions: n + 1000, Persist: file}
	if err := m2.Provision(ctx2); err != nil {
		fatal("%v", err)
	}
	if _, err := m2.Open(ctx2, appID); err != nil {
		fatal("%v", err)
	}
	m1.Cleanup()
	cancel1()
	m2.Cleanup()
	cancel2()
}

// caddyProc is a Caddy child and the addresses of its sites.
type caddyProc struct {
	proc          *gatewaytest.Process
	gateway, mock string
	client        *http.Client
}

// start runs Caddy with the gateway (persisting to file, unless "") and
// a wechat_mock site, on free ports. It does not wait: restart times
// count from the exec.
func start(bin, dir, file string) *caddyProc {
	maxSessions := 2 * *sessions
	ports, err := gatewaytest.FreePorts(3)
	if err != nil {
		fatal("%v", err)
	}
	admin, gw, mock := ports[0], ports[1], ports[2]
	persist := ""
	if file != "" {
		// Room for the timed logins: at the limit, the oldest sessions
		// (the first written) would be evicted.
		persist = fmt.Sprintf("\t\tstore memory {\n\t\t\tmax_sessions %d\n\t\t\tpersist %s\n\t\t}\n", maxSessions, file)
	}
	cf := gatewaytest.MockedGateway{Admin: admin, Storage: filepath.Join(dir, "caddy-data"), AppID: appID, AppSecret: secret, Mock: mock,
		Sites: []gatewaytest.GatewaySite{{Port: gw, Store: persist, Respond: "ok {http.auth.user.id}"}}}.Caddyfile()
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("caddy-%d.log", gw)))
	if err != nil {
		fatal("%v", err)
	}
	c := &caddyProc{gateway: fmt.Sprintf("http://127.0.0.1:%d", gw),
		mock: fmt.Sprintf("http://127.0.0.1:%d", mock), client: &http.Client{Timeout: 5 * time.Second}}
	c.proc, err = gatewaytest.Start(gatewaytest.Options{Bin: bin, Dir: dir, Caddyfile: cf, Log: logf,
		Ready: func() bool { st, err := c.get(""); return err == nil && st == http.StatusUnauthorized }})
	if err != nil {
		fatal("%v", err)
	}
	running = c
	return c
}

func (c *caddyProc) get(tok string) (int, error) {
	req, _ := http.NewRequest("GET", c.gateway+"/", nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitAuthenticated polls every 5 ms until tok is served with 200, and
// returns the time since the process was started.
func (c *caddyProc) waitAuthenticated(tok string) time.Duration {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if st, err := c.get(tok); err == nil {
			if st != http.StatusOK {
				fatal("authenticated request answered %d: the session was not restored", st)
			}
			return time.Since(c.proc.Started())
		}
		time.Sleep(5 * time.Millisecond)
	}
	fatal("Caddy did not answer within 2 minutes")
	return 0
}

func (c *caddyProc) checkAuthenticated(tok string) {
	if st, err := c.get(tok); err != nil || st != http.StatusOK {
		fatal("token %s: %d %v", tok, st, err)
	}
}

func (c *caddyProc) waitUp() {
	if err := c.proc.Wait(time.Minute); err != nil {
		fatal("%v", err)
	}
}

// loginLatencies logs n users in one after the other (each a new user:
// the mock's code names it) and returns each login's latency.
func (c *caddyProc) loginLatencies(n int) []time.Duration {
	var out []time.Duration
	for i := range n + 20 {
		body := fmt.Sprintf(`{"code":"lat-%d-%d"}`, time.Now().UnixNano(), i)
		t0 := time.Now()
		resp, err := c.client.Post(c.gateway+"/wechat/login", "application/json", strings.NewReader(body))
		if err != nil {
			fatal("%v", err)
		}
		var ans struct {
			Token string `json:"token"`
		}
		json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != http.StatusOK || ans.Token == "" {
			fatal("login answered %d", resp.StatusCode)
		}
		if i >= 20 { // (the first ones warm up connections and caches)
			out = append(out, d)
		}
	}
	return out
}

// cpu is the process's CPU time so far (utime + stime).
func (c *caddyProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.proc.Pid()))
	if err != nil {
		fatal("%v", err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz
}

func (c *caddyProc) rss() string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.proc.Pid()))
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// restart starts the stopped Caddy again on the same files and ports.
func (c *caddyProc) restart() {
	if err := c.proc.Restart(); err != nil {
		fatal("%v", err)
	}
	running = c
}

func (c *caddyProc) stop() {
	running = nil
	if err := c.proc.Stop(30 * time.Second); err != nil {
		fatal("%v", err)
	}
}

// say prints a line of the report (Caddy's init sends the log package to
// its JSON logger).
func say(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
