package memorystore

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data, not its times (the journal never changes
// size, so nothing else needs committing).
func fdatasync(f *os.File, path string) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: path, Err: err}
			}
			return nil
		}
	}
}
