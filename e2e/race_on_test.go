//go:build race

package e2e

// raceEnabled: this test binary was built with -race, so the xcaddy build
// is too, and reuses the packages `go test -race` compiled.
const raceEnabled = true
