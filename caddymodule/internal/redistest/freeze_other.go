//go:build !unix

package redistest

import (
	"errors"
	"os"
)

// freeze needs SIGSTOP, which this system does not have: the tests that
// pause Redis fail here rather than pass without pausing it.
func freeze(*os.Process) error {
	return errors.New("redistest: Pause needs SIGSTOP, which this system lacks")
}

// thaw has nothing to undo.
func thaw(*os.Process) {}
