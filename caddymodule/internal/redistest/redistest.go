// Package redistest starts real redis-server processes for the tests of
// the Redis store and of gateways that use it, each on free loopback
// ports of its own.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server process started by a test.
type Server struct {
	t    testing.TB
	bin  string
	port int
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// Start starts a private redis-server on a free loopback port and stops it
// when the test ends. Without extra arguments it keeps nothing on disk;
// pass e.g. "--appendonly", "yes" for a server whose data survives a
// restart. Stop and Restart may be called any number of times.
//
// When redis-server is not installed the test is skipped, except in CI
// (CI=true), where that is a failure: the Redis tests must run there.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required in CI (.ci/install-deps.sh installs it): %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	dir := t.TempDir()
	r := &Server{t: t, bin: bin}
	for attempt := 0; ; attempt++ {
		r.port = FreePort(t)
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
	t.Cleanup(r.Stop)
	return r
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is the server's host:port.
func (r *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

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
	for !ping(r.Addr()) {
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

// ping speaks just enough RESP to know the server is up.
func ping(addr string) bool {
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

// Stop shuts the server down (SIGTERM, so that an append-only file is
// flushed), killing it if it does not go within 5s.
func (r *Server) Stop() {
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
	r.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume undoes Pause.
func (r *Server) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmd.Process.Signal(syscall.SIGCONT)
}
