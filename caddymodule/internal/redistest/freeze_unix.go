//go:build unix

package redistest

import (
	"os"
	"syscall"
)

// freeze stops p where it is (SIGSTOP): its sockets stay open, nothing
// answers.
func freeze(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

// thaw undoes freeze (SIGCONT); a process not frozen ignores it.
func thaw(p *os.Process) { p.Signal(syscall.SIGCONT) }
