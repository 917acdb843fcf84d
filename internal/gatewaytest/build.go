package gatewaytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// CmdCaddy is the package of the module's Caddy: the standard modules,
// wechat_auth and wechat_mock.
const CmdCaddy = "github.com/caddy-wechat-auth/caddy-wechat-auth/cmd/caddy"

// Build is a Caddy binary built from CmdCaddy on first use, once for the
// whole test process: a test package declares one, and removes it in
// TestMain after m.Run. The zero value is ready to use.
type Build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the binary the first time, and returns its path.
func (b *Build) Path() (string, error) {
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "gatewaytest-caddy-")
		if err != nil {
			b.err = err
			return
		}
		b.dir, b.path = dir, filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", b.path, CmdCaddy)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", CmdCaddy, err, out)
		}
	})
	return b.path, b.err
}

// Bin is Path for a test: a failed build fails it.
func (b *Build) Bin(t testing.TB) string {
	t.Helper()
	path, err := b.Path()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Remove deletes the binary, if it was built.
func (b *Build) Remove() error {
	if b.dir == "" {
		return nil
	}
	return os.RemoveAll(b.dir)
}
