//go:build !linux

package memorystore

import "os"

// fdatasync flushes f. Go has fdatasync on Linux only; elsewhere (a
// developer's macOS or Windows) fsync does the same, and flushes the
// file's times too.
func fdatasync(f *os.File, path string) error {
	if err := f.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: path, Err: err}
	}
	return nil
}
