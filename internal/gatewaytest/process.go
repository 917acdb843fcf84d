// Package gatewaytest runs Caddy gateways as child processes for tests and
// benchmarks, in the spirit of caddytest but out of process: a binary built
// once (Build) or given (an xcaddy build, a test binary that acts as Caddy),
// started with `caddy run` on a Caddyfile with free ports (FreePort,
// FreePorts), waited for until it answers, stopped gracefully (Stop) or
// with SIGKILL (Kill), and restarted on the same files (Restart).
//
// Every operation has a form that returns an error, for plain programs
// such as bench/memstore; Run, MustRestart, FreePort and Eventually are the
// thin *testing.T forms on top.
package gatewaytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SelfEnv is set in the environment of a gateway that is the test binary
// itself (see Self).
const SelfEnv = "GATEWAYTEST_SELF"

// Self is the Options of a gateway that is the running test binary: a
// test package whose TestMain, when IsSelf, runs Caddy's command line
// (caddycmd.Main) instead of its tests. Such a gateway has the package's
// code and modules, built as its tests are (with -race under -race),
// with no build of its own. Dir and Caddyfile are for the caller.
func Self() (Options, error) {
	// Not os.Args[0]: caddytest rewrites os.Args.
	bin, err := os.Executable()
	if err != nil {
		return Options{}, err
	}
	return Options{Bin: bin, Env: []string{SelfEnv + "=1"}}, nil
}

// IsSelf tells a TestMain that its process is a gateway started by Self.
func IsSelf() bool { return os.Getenv(SelfEnv) != "" }

// ServingLine is what `caddy run` logs once it serves its configuration:
// the default readiness of a gateway.
const ServingLine = "serving initial configuration"

// Options say what to run and where.
type Options struct {
	// Bin is the Caddy binary: Build's, an xcaddy build, or a test
	// binary whose TestMain runs Caddy's command line. Required.
	Bin string
	// Dir is the gateway's own directory: HOME, XDG_DATA_HOME and
	// XDG_CONFIG_HOME point there, and the Caddyfile is written there as
	// "Caddyfile". Required.
	Dir string
	// WorkDir is the process's working directory, for Caddyfiles with
	// relative paths. Default: Dir.
	WorkDir string
	// Caddyfile is the configuration, written to Dir/Caddyfile by Start.
	Caddyfile string
	// Env is added to the test's environment (after HOME and the XDG
	// variables, so it may override them).
	Env []string
	// Ready tells whether the gateway is ready; Wait polls it. Default:
	// the process logged ServingLine.
	Ready func() bool
	// Log also receives the process's output (stdout and stderr), across
	// restarts. Default: none; Process.Log keeps the current run's.
	Log io.Writer
}

// Process is a Caddy child process. Its methods are not for concurrent
// use, except Log, which may be read while it runs.
type Process struct {
	opts    Options
	file    string
	cmd     *exec.Cmd
	started time.Time
	out     *syncBuffer
	exited  chan struct{}
	waitErr error
}

// Start writes the Caddyfile and starts `caddy run` on it. It does not
// wait for the gateway to be ready: see Wait.
func Start(o Options) (*Process, error) {
	if o.Bin == "" || o.Dir == "" {
		return nil, errors.New("gatewaytest: Options.Bin and Options.Dir are required")
	}
	p := &Process{opts: o, file: filepath.Join(o.Dir, "Caddyfile")}
	if err := os.WriteFile(p.file, []byte(o.Caddyfile), 0o600); err != nil {
		return nil, fmt.Errorf("gatewaytest: writing the Caddyfile: %w", err)
	}
	return p, p.run()
}

// Restart starts the gateway again, after Stop or Kill, on the same files:
// the Caddyfile as it is on disk now, the same directory.
func (p *Process) Restart() error {
	if p.Running() {
		return errors.New("gatewaytest: Restart of a gateway that still runs")
	}
	return p.run()
}

func (p *Process) run() error {
	cmd := exec.Command(p.opts.Bin, "run", "--config", p.file, "--adapter", "caddyfile")
	cmd.Dir = p.opts.WorkDir
	if cmd.Dir == "" {
		cmd.Dir = p.opts.Dir
	}
	d := p.opts.Dir
	cmd.Env = append(os.Environ(), "HOME="+d, "XDG_DATA_HOME="+d, "XDG_CONFIG_HOME="+d)
	cmd.Env = append(cmd.Env, p.opts.Env...)
	out := &syncBuffer{}
	var w io.Writer = out
	if p.opts.Log != nil {
		w = io.MultiWriter(out, p.opts.Log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("gatewaytest: starting %s: %w", p.opts.Bin, err)
	}
	p.cmd, p.out, p.started, p.exited, p.waitErr = cmd, out, time.Now(), make(chan struct{}), nil
	exited := p.exited
	go func() {
		// Read only after exited is closed, and written again only by a
		// Restart, which waits for that.
		p.waitErr = cmd.Wait()
		close(exited)
	}()
	return nil
}

// Wait polls the gateway's readiness (Options.Ready) until it holds, and
// fails when the process exits first or within passes.
func (p *Process) Wait(within time.Duration) error {
	ready := p.opts.Ready
	if ready == nil {
		ready = func() bool { return strings.Contains(p.Log(), ServingLine) }
	}
	deadline := time.Now().Add(within)
	for !ready() {
		select {
		case <-p.exited:
			return fmt.Errorf("gatewaytest: caddy exited before it was ready (%v); its output:\n%s", p.waitErr, p.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gatewaytest: caddy was not ready within %v; its output:\n%s", within, p.Log())
		}
	}
	return nil
}

// Running tells whether the process has been started and has not exited.
func (p *Process) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop asks the gateway to shut down (SIGINT: Caddy stops gracefully) and
// waits for it; after grace it sends SIGKILL. Stopping a process that
// has exited does nothing.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		return p.Kill()
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		return p.Kill()
	}
}

// Kill sends SIGKILL, so that nothing runs in the process after it, and
// waits for it to be gone. Killing a process that has exited does
// nothing.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("gatewaytest: kill: %w", err)
	}
	<-p.exited
	return nil
}

// Log is the output of the current run (since the last Start or Restart).
func (p *Process) Log() string {
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// Pid is the process id of the current run.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Started is when the current run was started.
func (p *Process) Started() time.Time { return p.started }

// CaddyfilePath is the Caddyfile's path: rewrite it before a Restart to
// restart on another config.
func (p *Process) CaddyfilePath() string { return p.file }

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(q []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(q)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
