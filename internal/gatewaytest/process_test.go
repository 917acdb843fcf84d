package gatewaytest

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain makes this test binary, started by Self, stand in for Caddy:
// it logs ServingLine (or, with FAKE_CADDY_FAIL, exits at once) and runs
// until SIGINT, which it logs.
func TestMain(m *testing.M) {
	if IsSelf() {
		if os.Getenv("FAKE_CADDY_FAIL") != "" {
			fmt.Fprintln(os.Stderr, "Error: adapting config: nonsense")
			os.Exit(1)
		}
		cfg, _ := os.ReadFile(os.Args[3])
		fmt.Fprintf(os.Stderr, "config %q home %s\n", cfg, os.Getenv("HOME"))
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		fmt.Fprintln(os.Stderr, ServingLine)
		<-stop
		fmt.Fprintln(os.Stderr, "shutting down")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fake(t *testing.T, env ...string) Options {
	o, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	o.Dir, o.Caddyfile, o.Env = t.TempDir(), ":1 {\n}\n", append(o.Env, env...)
	return o
}

func TestRunStopKillRestart(t *testing.T) {
	o := fake(t)
	p := Run(t, o)
	if log := p.Log(); !strings.Contains(log, `config ":1 {\n}\n" home `+o.Dir) {
		t.Fatalf("the child did not see its Caddyfile and HOME: %s", log)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Running() || !strings.Contains(p.Log(), "shutting down") {
		t.Fatalf("Stop did not stop gracefully: %s", p.Log())
	}
	if err := os.WriteFile(p.CaddyfilePath(), []byte("again\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.MustRestart(t)
	if !strings.Contains(p.Log(), `config "again\n"`) || strings.Contains(p.Log(), "shutting down") {
		t.Fatalf("the restart is not a new run on the file as it is: %s", p.Log())
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() || strings.Contains(p.Log(), "shutting down") {
		t.Fatalf("after Kill: running %v, log %s", p.Running(), p.Log())
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := p.Restart(); err == nil {
		t.Fatal("Restart of a running gateway was let through")
	}
}

func TestWaitReportsAnEarlyExit(t *testing.T) {
	p, err := Start(fake(t, "FAKE_CADDY_FAIL=1"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait(10 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("Wait: %v", err)
	}
}

func TestStartRefusesMissingOptions(t *testing.T) {
	if _, err := Start(Options{Dir: t.TempDir()}); err == nil {
		t.Fatal("no Bin was let through")
	}
	if _, err := Start(Options{Bin: "caddy", Dir: filepath.Join(t.TempDir(), "absent")}); err == nil {
		t.Fatal("a Dir that does not exist was let through")
	}
}
