// Package redistest starts real redis-server processes for the tests of
// the Redis store and of gateways that use it, each on free loopback
// ports of its own: a standalone server (Start), a primary with a
// replica watched by three sentinels (StartSentinel), and a Redis Cluster
// of three primaries with a replica each (StartCluster), with or without
// TLS.
//
// When redis-server (or, for a cluster, redis-cli) is not installed the
// test is skipped, except in CI (CI=true), where that is a failure: the
// Redis tests must run there (.ci/install-deps.sh installs them).
package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// Server is a redis-server process started by a test.
type Server struct {
	t    testing.TB
	bin  string
	port int
	args []string
	tls  *TLS

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a private redis-server on a free loopback port and stops it
// when the test ends. Without extra arguments it keeps nothing on disk;
// pass e.g. "--appendonly", "yes" for a server whose data survives a
// restart. Stop and Restart may be called any number of times.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	return start(t, nil, t.TempDir(), nil, extraArgs)
}

// StartTLS is Start with TLS only (no plain port), with a certificate of
// tc's CA for 127.0.0.1.
func StartTLS(t testing.TB, tc *TLS, extraArgs ...string) *Server {
	t.Helper()
	return start(t, tc, t.TempDir(), nil, extraArgs)
}

// need finds a program or skips (fails in CI).
func need(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (.ci/install-deps.sh installs it): %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return bin
}

// start starts redis-server with leading arguments (a config file) before
// the common ones, and extra after them.
func start(t testing.TB, tc *TLS, dir string, leading, extra []string) *Server {
	t.Helper()
	return startOn(t, 0, tc, dir, leading, extra)
}

// startOn is start on a given port (0: a free one).
func startOn(t testing.TB, port int, tc *TLS, dir string, leading, extra []string) *Server {
	t.Helper()
	bin := need(t, "redis-server")
	r := &Server{t: t, bin: bin, tls: tc}
	for attempt := 0; ; attempt++ {
		r.port = port
		if port == 0 || attempt > 0 {
			r.port = gatewaytest.FreePort(t)
		}
		args := append([]string(nil), leading...)
		if tc != nil {
			args = append(args, "--port", "0", "--tls-port", strconv.Itoa(r.port))
			args = append(args, tc.serverArgs()...)
		} else {
			args = append(args, "--port", strconv.Itoa(r.port))
		}
		args = append(args, "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no", "--logfile", "")
		if len(leading) == 0 || leading[len(leading)-1] != "--sentinel" {
			// A replica's first sync starts at once, not after the
			// default 5s wait for more replicas.
			args = append(args, "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0")
		}
		r.args = append(args, extra...)
		err := r.start()
		if err == nil {
			break
		}
		if attempt == 2 { // the port was taken in between, three times
			t.Fatal(err)
		}
	}
	t.Cleanup(r.Stop)
	return r
}

// Addr is the server's host:port.
func (r *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Port is the server's port.
func (r *Server) Port() int { return r.port }

func (r *Server) start() error {
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
	for !ping(r.Addr(), r.tls) {
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
	r.cmd, r.done = cmd, done
	return nil
}

// ping speaks just enough RESP to know the server is up.
func ping(addr string, tc *TLS) bool {
	line, err := roundTrip(addr, tc, "PING")
	// A server with requirepass answers NOAUTH: it is up all the same.
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// roundTrip sends one inline command and reads the first line of the
// answer.
func roundTrip(addr string, tc *TLS, command string) (string, error) {
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 200 * time.Millisecond}
	if tc != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tc.ClientConfig())
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := io.WriteString(c, command+"\r\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// Stop shuts the server down (SIGTERM, so that an append-only file is
// flushed), killing it if it does not go within 5s.
func (r *Server) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	thaw(r.cmd.Process) // in case a test paused it
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// Kill kills the server at once (SIGKILL), as a crash or a lost machine
// would: nothing is flushed, connections are reset.
func (r *Server) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Restart stops and starts the server on the same port.
func (r *Server) Restart() {
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, as with a hung or overloaded Redis.
func (r *Server) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := freeze(r.cmd.Process); err != nil {
		r.t.Fatal(err)
	}
}

// Resume undoes Pause.
func (r *Server) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	thaw(r.cmd.Process)
}

// eventually is gatewaytest.Eventually, its failures marked as this
// package's.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	gatewaytest.Eventually(t, within, "redistest: "+what, cond)
}
