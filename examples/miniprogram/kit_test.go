// Package miniprogram holds the JavaScript client kit for mini programs;
// this Go test runs its node:test suite, so that `go test ./...` covers it.
package miniprogram

import (
	"os"
	"os/exec"
	"testing"
)

func TestClientKit(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed; CI installs it (.ci/install-deps.sh)")
		}
		t.Skip("node is not installed: the JavaScript client kit's tests need it")
	}
	out, err := exec.Command(node, "--test").CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node --test failed: %v", err)
	}
}
