//go:build unix

package memorystore

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used (user and system, every
// thread: the GC's included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
