package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// redisServer is a redis-server process started by a test.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// startRedis starts a private redis-server on a free loopback port and
// stops it when the test ends. Without extra arguments it keeps nothing on
// disk; pass e.g. "--appendonly", "yes" for a server whose data survives
// restart. stop and restart may be called any number of times.
//
// When redis-server is not installed the test is skipped, except in CI
// (CI=true), where that is a failure: the Redis tests must run there.
func startRedis(t testing.TB, extraArgs ...string) (addr string, stop, restart func()) {
	r := startRedisServer(t, extraArgs...)
	return r.addr(), r.stop, r.restart
}

func startRedisServer(t testing.TB, extraArgs ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required in CI (.ci/install-deps.sh installs it): %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	dir := t.TempDir()
	r := &redisServer{t: t, bin: bin}
	for attempt := 0; ; attempt++ {
		r.port = freePort(t)
		r.args = append([]string{
			"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--daemonize", "no", "--logfile", "",
		}, extraArgs...)
		err := r.start()
		if err == nil {
			break
		}
		if attempt == 2 { // the port was taken in between, three times
			t.Fatal(err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

func (r *redisServer) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return nil
	}
	cmd := exec.Command(r.bin, r.args...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !redisPing(r.addr()) {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server did not answer PING: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.cmd, r.out, r.done = cmd, out, done
	return nil
}

// redisPing speaks just enough RESP to know the server is up.
func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	// A server with requirepass answers NOAUTH: it is up all the same.
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// stop shuts the server down (SIGTERM, so that an append-only file is
// flushed), killing it if it does not go within 5s.
func (r *redisServer) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGCONT) // in case a test paused it
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

func (r *redisServer) restart() {
	r.stop()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, as with a hung or overloaded Redis.
func (r *redisServer) pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmd.Process.Signal(syscall.SIGSTOP)
}

func (r *redisServer) resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmd.Process.Signal(syscall.SIGCONT)
}

// openRedis provisions a RedisStore module as Caddy would and opens the
// store of appID; the returned cleanup is what Caddy calls when the config
// is unloaded.
func openRedis(t testing.TB, m *RedisStore, appID string, logs **observer.ObservedLogs) (*redisStore, func()) {
	t.Helper()
	s, cleanup := openStoreModule(t, m, func(l *zap.Logger) { m.logger = l }, zap.DebugLevel, appID, logs)
	return s.(*redisStore), cleanup
}

func durationPtr(d time.Duration) *caddy.Duration {
	cd := caddy.Duration(d)
	return &cd
}

func TestRedisStoreConformance(t *testing.T) {
	addr, _, _ := startRedis(t)
	for _, cache := range []time.Duration{DefaultRedisCacheTTL, 0} {
		t.Run(fmt.Sprint("cache_ttl=", cache), func(t *testing.T) {
			testStoreConformance(t, func(t *testing.T, appID string) Store {
				s, _ := openRedis(t, &RedisStore{Address: addr, CacheTTL: durationPtr(cache)}, appID, nil)
				return s
			})
		})
	}
}

// TestRedisStoreSharedByGateways runs two stores on one Redis with their
// own clients and caches, as two Caddy instances would.
func TestRedisStoreSharedByGateways(t *testing.T) {
	addr, _, _ := startRedis(t)
	app := appIDFor(t, "")
	const cacheTTL = 100 * time.Millisecond
	a, _ := openRedis(t, &RedisStore{Address: addr, CacheTTL: durationPtr(cacheTTL)}, app, nil)
	// A different timeout makes a different pool entry: its own client
	// and cache, not a second reference to a's.
	b, _ := openRedis(t, &RedisStore{Address: addr, CacheTTL: durationPtr(cacheTTL), Timeout: caddy.Duration(2 * time.Second)}, app, nil)
	if a == b {
		t.Fatal("the two gateways share a client")
	}
	ctx := context.Background()
	gone := func(s Store, h TokenHash) func() bool {
		return func() bool { _, err := s.Lookup(ctx, h); return errors.Is(err, ErrNotFound) }
	}

	alice := User{OpenID: "o-alice", UnionID: "u-alice", SessionKey: "k1"}
	h1, h2 := testHash("g1"), testHash("g2")
	mustCreate(t, a, h1, alice, time.Hour)
	if u := mustLookup(t, b, h1).User; u != alice {
		t.Fatalf("login on A seen on B as %+v", u)
	}
	mustCreate(t, b, h2, alice, time.Hour)
	mustLookup(t, a, h2)

	// Phone bound on A: B has h1 cached, and sees the phone within
	// cache_ttl.
	if err := a.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*cacheTTL, "phone bound on A seen on B", func() bool {
		return mustLookup(t, b, h1).User.Phone == "13800001111"
	})

	// Re-login on B rotates the key for A's cached tokens too.
	mustCreate(t, b, testHash("g3"), User{OpenID: alice.OpenID, SessionKey: "k2"}, time.Hour)
	eventually(t, 10*cacheTTL, "new session key seen on A", func() bool {
		return mustLookup(t, a, h2).User.SessionKey == "k2"
	})
	// A caller that needs the newest key gets it at once.
	mustCreate(t, b, testHash("g4"), User{OpenID: alice.OpenID, SessionKey: "k3"}, time.Hour)
	if sess, err := a.Lookup(withFreshLookup(ctx), h2); err != nil || sess.User.SessionKey != "k3" {
		t.Fatalf("fresh look-up: %+v, %v", sess.User, err)
	}

	// Logout on B: gone on B at once, on A within cache_ttl.
	mustLookup(t, a, h1)
	if err := b.DeleteSession(ctx, h1); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, b, h1)
	eventually(t, 10*cacheTTL, "logout on B seen on A", gone(a, h1))

	// Revoke on A reaches tokens created on B.
	mustLookup(t, b, h2)
	if n, err := a.RevokeUser(ctx, alice.OpenID); err != nil || n != 3 {
		t.Fatalf("RevokeUser = %d, %v; want 3", n, err)
	}
	eventually(t, 10*cacheTTL, "revoke on A seen on B", gone(b, h2))
	wantCount(t, a, 0)
	wantCount(t, b, 0)
}

func TestRedisStoreRestartKeepsSessions(t *testing.T) {
	srv := startRedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	s, _ := openRedis(t, &RedisStore{Address: srv.addr(), CacheTTL: durationPtr(0)}, appIDFor(t, ""), nil)
	ctx := context.Background()
	h := testHash("persist")
	u := User{OpenID: "o", SessionKey: "k", Phone: "13800001111", CountryCode: "86"}
	exp := mustCreate(t, s, h, u, time.Hour)
	if err := s.PutLoginResult(ctx, "code", []byte("sealed"), time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.restart()
	// The same store, not reopened: its client reconnects.
	var sess Session
	eventually(t, 10*time.Second, "look-up after the Redis restart", func() bool {
		var err error
		sess, err = s.Lookup(ctx, h)
		return err == nil
	})
	if sess.User != u || !sess.ExpiresAt.Equal(exp) {
		t.Fatalf("after restart: %+v", sess)
	}
	if b, err := s.GetLoginResult(ctx, "code"); err != nil || string(b) != "sealed" {
		t.Fatalf("login result after restart: %q, %v", b, err)
	}
	wantCount(t, s, 1)
}

// TestRedisStoreOutage: Redis gone or hung is a store failure (503), never
// "not authenticated" (401), it costs at most about the timeout, and the
// store heals without being reopened.
func TestRedisStoreOutage(t *testing.T) {
	srv := startRedisServer(t, "--appendonly", "yes")
	const timeout = 300 * time.Millisecond
	s, _ := openRedis(t, &RedisStore{Address: srv.addr(), CacheTTL: durationPtr(0), Timeout: caddy.Duration(timeout)}, appIDFor(t, ""), nil)
	ctx := context.Background()
	h := testHash("outage")
	mustCreate(t, s, h, User{OpenID: "o", SessionKey: "k"}, time.Hour)

	storeDown := func(what string, err error, took time.Duration) {
		t.Helper()
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("%s during the outage: %v, want a store error (not ErrNotFound)", what, err)
		}
		if took > 4*timeout {
			t.Fatalf("%s took %v with a %v timeout", what, took, timeout)
		}
	}
	check := func() {
		t.Helper()
		start := time.Now()
		_, err := s.Lookup(ctx, h)
		storeDown("Lookup", err, time.Since(start))
		start = time.Now()
		_, err = s.CreateSession(ctx, testHash("new"), User{OpenID: "o", SessionKey: "k"}, time.Hour)
		storeDown("CreateSession", err, time.Since(start))
		start = time.Now()
		_, err = s.GetLoginResult(ctx, "code")
		storeDown("GetLoginResult", err, time.Since(start))
		start = time.Now()
		err = s.BindPhone(ctx, "o", "1", "86")
		storeDown("BindPhone", err, time.Since(start))
		start = time.Now()
		_, err = s.Count(ctx)
		storeDown("Count", err, time.Since(start))
	}

	// Hung: the connection is open, nothing answers.
	srv.pause()
	check()
	srv.resume()
	eventually(t, 10*time.Second, "recovery from a hung Redis", func() bool {
		_, err := s.Lookup(ctx, h)
		return err == nil
	})

	// Gone: connections refused.
	srv.stop()
	for range 3 { // also after the pool has given up dialing
		check()
	}
	srv.restart()
	eventually(t, 10*time.Second, "recovery after Redis came back", func() bool {
		_, err := s.Lookup(ctx, h)
		return err == nil
	})
	mustCreate(t, s, testHash("after"), User{OpenID: "o", SessionKey: "k"}, time.Hour)
	mustLookup(t, s, testHash("after"))
}

// TestRedisStoreCacheServesDuringOutage: a token validated within
// cache_ttl keeps passing while Redis is briefly away.
func TestRedisStoreCacheServesDuringOutage(t *testing.T) {
	srv := startRedisServer(t)
	s, _ := openRedis(t, &RedisStore{Address: srv.addr(), CacheTTL: durationPtr(time.Minute)}, appIDFor(t, ""), nil)
	h := testHash("cached")
	mustCreate(t, s, h, User{OpenID: "o", SessionKey: "k"}, time.Hour)
	mustLookup(t, s, h)
	srv.stop()
	mustLookup(t, s, h)
	// A logout on this instance is honoured even though Redis is down.
	if err := s.DeleteSession(context.Background(), h); err == nil {
		t.Fatal("DeleteSession with Redis down reported success")
	}
	if _, err := s.Lookup(context.Background(), h); err == nil {
		t.Fatal("a token logged out here is still served from the cache")
	}
}

func TestRedisStoreCacheBounded(t *testing.T) {
	addr, _, _ := startRedis(t)
	s, _ := openRedis(t, &RedisStore{Address: addr}, appIDFor(t, ""), nil)
	for i := range redisCacheMax + 10 {
		h := seqHash(i)
		s.cacheMu.Lock()
		if len(s.cache) >= redisCacheMax {
			s.cache = make(map[TokenHash]redisCached)
		}
		s.cache[h] = redisCached{until: time.Now().Add(time.Hour).UnixNano()}
		s.cacheMu.Unlock()
	}
	h := testHash("bounded")
	mustCreate(t, s, h, User{OpenID: "o", SessionKey: "k"}, time.Hour)
	mustLookup(t, s, h)
	s.cacheMu.RLock()
	n := len(s.cache)
	s.cacheMu.RUnlock()
	if n > redisCacheMax {
		t.Fatalf("cache holds %d entries, bound is %d", n, redisCacheMax)
	}
}

// TestRedisStoreKeyLayout pins the documented keys, and that no raw token
// reaches Redis.
func TestRedisStoreKeyLayout(t *testing.T) {
	addr, _, _ := startRedis(t)
	app := appIDFor(t, "")
	s, _ := openRedis(t, &RedisStore{Address: addr, KeyPrefix: "myprefix:"}, app, nil)
	ctx := context.Background()
	token := "the-raw-token-value"
	h := HashToken(token)
	mustCreate(t, s, h, User{OpenID: "o-1", SessionKey: "sk"}, time.Minute)
	if err := s.PutLoginResult(ctx, "c", []byte("r"), time.Minute); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	p := "myprefix:" + app + ":"
	hx := hex.EncodeToString(h[:])
	want := map[string]bool{p + "s:" + hx: true, p + "u:o-1": true, p + "t:o-1": true, p + "idx": true, p + "r:c": true}
	if len(keys) != len(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	for _, k := range keys {
		if !want[k] {
			t.Fatalf("unexpected key %q", k)
		}
		if ttl := rdb.PTTL(ctx, k).Val(); k != p+"idx" && (ttl <= 0 || ttl > time.Minute) {
			t.Fatalf("key %q has TTL %v", k, ttl)
		}
		dump, _ := rdb.Dump(ctx, k).Result()
		if strings.Contains(k+dump, token) {
			t.Fatalf("raw token stored in %q", k)
		}
	}
}

func TestRedisStorePasswordAndPlaceholders(t *testing.T) {
	const password = "s3cret-Pa55word"
	addr, _, _ := startRedis(t, "--requirepass", password)
	t.Setenv("TEST_REDIS_PASSWORD", password)
	t.Setenv("TEST_REDIS_ADDR", addr)

	var logs *observer.ObservedLogs
	s, _ := openRedis(t, &RedisStore{Address: "{env.TEST_REDIS_ADDR}", Password: "{env.TEST_REDIS_PASSWORD}"}, appIDFor(t, ""), &logs)
	h := testHash("pw")
	mustCreate(t, s, h, User{OpenID: "o", SessionKey: "k"}, time.Hour)
	mustLookup(t, s, h)

	// A wrong password: a store error (503), never ErrNotFound, and the
	// password is in no log line or error.
	var badLogs *observer.ObservedLogs
	bad, _ := openRedis(t, &RedisStore{Address: addr, Password: "wrong-" + password}, appIDFor(t, "bad"), &badLogs)
	_, err := bad.Lookup(context.Background(), h)
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup with a wrong password: %v", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error carries the password: %v", err)
	}
	if badLogs.FilterLevelExact(zap.WarnLevel).Len() != 1 {
		t.Fatalf("an unreachable Redis at start is not reported: %v", badLogs.All())
	}
	for _, l := range append(logs.All(), badLogs.All()...) {
		line, _ := json.Marshal(l.ContextMap())
		if strings.Contains(l.Message+string(line), password) {
			t.Fatalf("password logged: %s %s", l.Message, line)
		}
	}
}

func TestRedisStoreGoroutinesReleased(t *testing.T) {
	addr, _, _ := startRedis(t)
	runtime.GC()
	base := runtime.NumGoroutine()
	for i := range 3 {
		s, cleanup := openRedis(t, &RedisStore{Address: addr}, appIDFor(t, fmt.Sprint(i)), nil)
		var wg sync.WaitGroup
		for j := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := seqHash(j)
				mustCreate(t, s, h, User{OpenID: "o", SessionKey: "k"}, time.Hour)
				mustLookup(t, s, h)
			}()
		}
		wg.Wait()
		cleanup()
	}
	// A store opened while Redis is down must not leave its dialer
	// behind either.
	_, cleanup := openRedis(t, &RedisStore{Address: "127.0.0.1:" + strconv.Itoa(freePort(t)), Timeout: caddy.Duration(100 * time.Millisecond)}, appIDFor(t, "down"), nil)
	cleanup()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisStorePool(t *testing.T) {
	addr, _, _ := startRedis(t)
	app := appIDFor(t, "")
	a, cleanupA := openRedis(t, &RedisStore{Address: addr}, app, nil)
	b, cleanupB := openRedis(t, &RedisStore{Address: addr}, app, nil)
	if a != b {
		t.Fatal("a reload with the same settings made a second client")
	}
	other, _ := openRedis(t, &RedisStore{Address: addr}, app+"-other", nil)
	if other == a {
		t.Fatal("two apps share a store")
	}
	cleanupA()
	h := testHash("pool")
	mustCreate(t, b, h, User{OpenID: "o", SessionKey: "k"}, time.Hour)
	cleanupB()
	if err := b.client.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("client still open after the last Cleanup: %v", err)
	}
	c, _ := openRedis(t, &RedisStore{Address: addr}, app, nil)
	mustLookup(t, c, h)
}

func TestRedisStoreCaddyfile(t *testing.T) {
	var r RedisStore
	d := caddyfile.NewTestDispenser(`redis {
		address    redis.internal:6380
		username   gateway
		password   {env.REDIS_PASSWORD}
		db         3
		key_prefix myapp:
		tls
		cache_ttl  2s
		timeout    500ms
	}`)
	if err := r.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := RedisStore{Address: "redis.internal:6380", Username: "gateway", Password: "{env.REDIS_PASSWORD}",
		DB: 3, KeyPrefix: "myapp:", TLS: true, CacheTTL: durationPtr(2 * time.Second), Timeout: caddy.Duration(500 * time.Millisecond)}
	gotJS, _ := json.Marshal(&r)
	wantJS, _ := json.Marshal(&want)
	if string(gotJS) != string(wantJS) {
		t.Fatalf("parsed %s, want %s", gotJS, wantJS)
	}

	var off RedisStore
	if err := off.UnmarshalCaddyfile(caddyfile.NewTestDispenser("redis {\n cache_ttl off\n}")); err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(&off); string(js) != `{"cache_ttl":0}` {
		t.Fatalf("cache_ttl off: %s", js)
	}
	var empty RedisStore
	if err := empty.UnmarshalCaddyfile(caddyfile.NewTestDispenser("redis")); err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(&empty); string(js) != `{}` {
		t.Fatalf("defaults: %s", js)
	}

	for input, wantErr := range map[string]string{
		"redis {\n db x\n}":             "db",
		"redis {\n db -1\n}":            "db",
		"redis {\n cache_ttl soon\n}":   "cache_ttl",
		"redis {\n timeout 0s\n}":       "timeout",
		"redis {\n timeout\n}":          "wrong argument count",
		"redis {\n address\n}":          "wrong argument count",
		"redis {\n address a b\n}":      "too many arguments",
		"redis {\n tls yes\n}":          "too many arguments",
		"redis {\n adress localhost\n}": "adress",
		"redis extra":                   "wrong argument count",
	} {
		var r RedisStore
		err := r.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one mentioning %q", input, err, wantErr)
		}
	}

	if _, err := caddy.GetModule("wechat_auth.stores.redis"); err != nil {
		t.Fatal(err)
	}
	ctx := caddy.Context{Context: context.Background()}
	if err := (&RedisStore{DB: -1}).Provision(ctx); err == nil {
		t.Fatal("negative db accepted")
	}
	if err := (&RedisStore{CacheTTL: durationPtr(-time.Second)}).Provision(ctx); err == nil {
		t.Fatal("negative cache_ttl accepted")
	}
	if _, err := (&RedisStore{Address: "no-port"}).Open(ctx, "wx"); err == nil {
		t.Fatal("address without port accepted")
	}
}

// BenchmarkRedisLookup measures a pass-through look-up with the local
// cache (the default) and without it (a round trip per request).
func BenchmarkRedisLookup(b *testing.B) {
	addr, _, _ := startRedis(b)
	for _, cache := range []time.Duration{DefaultRedisCacheTTL, 0} {
		name := "cache=on"
		if cache == 0 {
			name = "cache=off"
		}
		b.Run(name, func(b *testing.B) {
			s, _ := openRedis(b, &RedisStore{Address: addr, CacheTTL: durationPtr(cache)}, "wx_bench_"+name, nil)
			ctx := context.Background()
			hs := make([]TokenHash, 1000)
			for i := range hs {
				hs[i] = seqHash(i)
				u := User{OpenID: fmt.Sprintf("oAbCdEfGhIjKlMnOpQr%09d", i), SessionKey: "c2Vzc2lvbktleTEyMzQ1Ng=="}
				if _, err := s.CreateSession(ctx, hs[i], u, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.Lookup(ctx, hs[i%len(hs)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}
