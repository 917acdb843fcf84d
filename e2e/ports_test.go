package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestRewritePorts: every port of Caddyfile.example moves, the ones the
// gateway reaches (api_base, reverse_proxy) included.
func TestRewritePorts(t *testing.T) {
	out, ports := exampleOnFreePorts(t, "..")
	gw, mock, up, admin := ports[0].port, ports[1].port, ports[2].port, ports[3].port
	for _, want := range []string{
		"admin localhost:" + strconv.Itoa(admin) + "\n",
		"http://localhost:" + strconv.Itoa(gw) + " {",
		"http://localhost:" + strconv.Itoa(mock) + " {",
		"api_base http://localhost:" + strconv.Itoa(mock) + "\n",
		"http://localhost:" + strconv.Itoa(up) + " {",
		"reverse_proxy localhost:" + strconv.Itoa(up) + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the rewritten Caddyfile lacks %q:\n%s", want, out)
		}
	}

	// A demo port in a form the rewrite does not know is refused.
	if _, err := rewritePorts("http://:8080 {\n}\n", ports); err == nil || !strings.Contains(err.Error(), "8080") {
		t.Errorf("a bare :8080 was let through: %v", err)
	}
}

// TestCheckFreeNamesTheTakenPort: a port something listens on (a demo left
// running) is reported by number and role.
func TestCheckFreeNamesTheTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	err = checkFree(&demoPort{role: "gateway", demo: 8080, port: port})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(port)+" (for the gateway) is taken") {
		t.Fatalf("checkFree on a taken port: %v", err)
	}
	l.Close()
	if err := checkFree(&demoPort{role: "gateway", demo: 8080, port: port}); err != nil {
		t.Fatalf("checkFree on a port just released: %v", err)
	}
}
