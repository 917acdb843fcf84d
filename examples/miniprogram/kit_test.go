// Package miniprogram holds the JavaScript client kit for mini programs (an
// npm package: dist/index.js and its declarations dist/index.d.ts). These Go
// tests run its node:test suites and type-check its declarations with the
// pinned TypeScript compiler, so that `go test ./...` covers both.
package miniprogram

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installTypeScript is the command that installs the pinned TypeScript
// compiler and the platforms' typings (package-lock.json) for
// TestClientKitTypes, from the repository root.
const installTypeScript = "npm ci --prefix examples/miniprogram"

// needNode returns the path of node, or skips (fails with CI=true) without it.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed; CI installs it (.ci/install-deps.sh)")
		}
		t.Skip("node is not installed: the JavaScript client kit's tests need it")
	}
	return node
}

func TestClientKit(t *testing.T) {
	node := needNode(t)
	out, err := exec.Command(node, "--test").CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node --test failed: %v", err)
	}
}

// TestClientKitTypes compiles types-test/sample.ts, which uses every export
// of dist/index.d.ts, with `tsc --noEmit` under the strict options of
// types-test/tsconfig.json; then types-test/platforms, which passes the
// real wx, tt, my, uni and Taro objects (typed by the platforms' published
// typings) to createClient.
func TestClientKitTypes(t *testing.T) {
	needNode(t)
	tsc := filepath.Join("node_modules", ".bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; CI installs it (.ci/install-deps.sh runs %s)", tsc, installTypeScript)
		}
		t.Skipf("TypeScript is not installed for the client kit's type check: run `%s` from the repository root", installTypeScript)
	}

	// The compiler must be the version package.json pins, not a stale one.
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	raw, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	want := pkg.DevDependencies["typescript"]
	if want == "" {
		t.Fatal("package.json pins no typescript devDependency")
	}
	version, err := exec.Command(tsc, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("tsc --version: %v\n%s", err, version)
	}
	if got := strings.TrimSpace(string(version)); got != "Version "+want {
		t.Fatalf("tsc --version says %q, package.json pins %s: run `%s` from the repository root", got, want, installTypeScript)
	}

	for _, project := range []string{"types-test", filepath.Join("types-test", "platforms")} {
		out, err := exec.Command(tsc, "-p", project, "--noEmit").CombinedOutput()
		t.Logf("tsc %s -p %s --noEmit:\n%s", want, project, out)
		if err != nil {
			t.Fatalf("the client kit's declarations do not type-check (%s): %v", project, err)
		}
	}
}
