package gatewaytest

import (
	"testing"
	"time"
)

// ReadyWithin is how long Run and MustRestart wait for a gateway.
const ReadyWithin = 60 * time.Second

// StopGrace is how long the cleanup of Run lets a gateway shut down
// before it kills it.
const StopGrace = 10 * time.Second

// Run starts a gateway for the test and waits until it is ready; when the
// test ends it is stopped (killed after StopGrace), and its output is
// logged if the test failed.
func Run(t testing.TB, o Options) *Process {
	t.Helper()
	p, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(StopGrace); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", p.Log())
		}
	})
	if err := p.Wait(ReadyWithin); err != nil {
		t.Fatal(err)
	}
	return p
}

// MustRestart restarts a gateway that Run started, and waits until it is
// ready.
func (p *Process) MustRestart(t testing.TB) {
	t.Helper()
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(ReadyWithin); err != nil {
		t.Fatal(err)
	}
}
