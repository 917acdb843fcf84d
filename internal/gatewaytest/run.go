package gatewaytest

import (
	"strings"
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
	p.stopAtCleanup(t)
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

// portTries is how many times RunOnFreePorts starts a gateway whose ports
// were taken before it could bind them.
const portTries = 3

// RunOnFreePorts is Run for a gateway whose ports options picks (with
// FreePort). A port found free can be taken by another process before the
// gateway binds it (the packages' tests run side by side); when the
// gateway exits for that, options is called again for new ports and the
// gateway started again, up to portTries times.
func RunOnFreePorts(t testing.TB, options func() Options) *Process {
	t.Helper()
	for try := 1; ; try++ {
		p, err := Start(options())
		if err != nil {
			t.Fatal(err)
		}
		err = p.Wait(ReadyWithin)
		if err != nil && try < portTries && !p.Running() && strings.Contains(p.Log(), "address already in use") {
			t.Logf("gatewaytest: a port was taken before the gateway bound it; again on new ports")
			continue
		}
		p.stopAtCleanup(t)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// stopAtCleanup stops p when the test ends (killed after StopGrace), and
// logs its output if the test failed.
func (p *Process) stopAtCleanup(t testing.TB) {
	t.Cleanup(func() {
		if err := p.Stop(StopGrace); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", p.Log())
		}
	})
}
