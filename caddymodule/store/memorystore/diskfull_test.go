package memorystore

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The disk under the persist file fills, in a real gateway: the child's
// file size limit (RLIMIT_FSIZE, set with util-linux's prlimit while it
// runs) drops to two pages, so that bbolt can write neither a data page
// nor its freelist, or to the file's size, so that it can grow the file
// no more. Go's runtime ignores SIGXFSZ unless a program asks for it
// (Caddy does not), so the write returns EFBIG instead of the signal
// killing the process.

// diskFullLimit is the file size limit of a full disk: bbolt's two meta
// pages, which it writes only after the pages of a transaction.
const diskFullLimit = 2 * 4096

// The log lines of the store at the two transitions (diskhealth.go).
const (
	diskFailingLine   = "persist file failing"
	diskRecoveredLine = "persist file written again"
)

// limitFileSize sets the soft file size limit of the process pid
// ("unlimited" lifts it); the hard limit stays, so no privilege is needed
// to lift it again.
func limitFileSize(t *testing.T, pid int, limit string) {
	t.Helper()
	bin, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prlimit (util-linux) is required in CI (.ci/install-deps.sh installs it): %v", err)
		}
		t.Skipf("prlimit (util-linux) not installed: %v", err)
	}
	if out, err := exec.Command(bin, "--pid", strconv.Itoa(pid), "--fsize="+limit+":").CombinedOutput(); err != nil {
		t.Fatalf("prlimit --fsize=%s: %v\n%s", limit, err, out)
	}
}

// wantUnavailable checks that an answer is 503 store_unavailable.
func wantUnavailable(t *testing.T, what string, st int, body string, err error) {
	t.Helper()
	if err != nil || st != http.StatusServiceUnavailable || !strings.Contains(body, `"store_unavailable"`) {
		t.Fatalf("%s with the disk full: %d %q %v, want 503 store_unavailable", what, st, body, err)
	}
}

// While the disk is full, every change (login, phone binding, logout)
// answers 503 store_unavailable and pass-through of existing sessions goes
// on; when space returns the gateway writes again by itself, and the store
// logs one line at each of the two transitions. After a kill -9 and a
// start on the same file, every token answered 200 works and every
// logout answered 204 stays dead.
func TestProcessDiskFull(t *testing.T) {
	g := newGateway(t)
	g.start()

	var live, dead []answered
	users := map[answered]string{} // the mock's user of each session
	login := func(user string) answered {
		t.Helper()
		a := g.mustLogin(user)
		users[a] = user
		return a
	}
	for i := range 30 {
		live = append(live, login(fmt.Sprintf("before%d", i)))
	}
	logout := func(a answered) (int, string, error) { return g.do("POST", g.url("/wechat/logout"), a.token, "") }
	mustLogout := func(a answered) {
		t.Helper()
		if st, body, err := logout(a); err != nil || st != http.StatusNoContent {
			t.Fatalf("logout of %s: %d %q %v", a.openid, st, body, err)
		}
		dead = append(dead, a)
	}
	mustLogout(live[0])
	live = live[1:]
	phoneCodes := 0
	bindPhone := func(a answered) (int, string, error) {
		phoneCodes++ // (each code once, as on WeChat)
		return g.do("POST", g.url("/wechat/phone"), a.token, fmt.Sprintf(`{"code":"%s:phone%d"}`, users[a], phoneCodes))
	}

	limitFileSize(t, g.proc.Pid(), strconv.Itoa(diskFullLimit))
	for i := range 10 {
		st, body, err := g.do("POST", g.url("/wechat/login"), "", fmt.Sprintf(`{"code":"full%d"}`, i))
		wantUnavailable(t, "login", st, body, err)
	}
	st, body, err := bindPhone(live[0])
	wantUnavailable(t, "phone binding", st, body, err)
	// A logout answered 503 promised nothing. The session has left
	// memory already (this gateway refuses it from now on: 401) and its
	// removal waits in the background queue.
	unsure := live[1]
	st, body, err = logout(unsure)
	wantUnavailable(t, "logout", st, body, err)
	live = append(live[:1], live[2:]...)
	// Pass-through goes on (it never touches the disk), for longer than
	// a few rounds of the background writer, whose failures must not add
	// log lines either.
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		for _, a := range live {
			g.wantServed(a, "")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(g.logs(), diskFailingLine); n != 1 {
		t.Fatalf("%d log lines %q while the disk is full, want 1; log:\n%s", n, diskFailingLine, g.logs())
	}
	if strings.Contains(g.logs(), diskRecoveredLine) {
		t.Fatalf("%q logged while the disk is still full", diskRecoveredLine)
	}

	// Space returns: the next change is written, with no restart.
	limitFileSize(t, g.proc.Pid(), "unlimited")
	for i := range 10 {
		live = append(live, login(fmt.Sprintf("after%d", i)))
	}
	phoneUser := live[0] // its binding was answered 503: the client sends it again
	st, body, err = bindPhone(phoneUser)
	if err != nil || st != http.StatusOK {
		t.Fatalf("phone binding once there is room: %d %q %v", st, body, err)
	}
	var ph struct{ PurePhoneNumber string }
	if err := json.Unmarshal([]byte(body), &ph); err != nil || ph.PurePhoneNumber == "" {
		t.Fatalf("phone answer %q: %v", body, err)
	}
	if st, body, err := logout(unsure); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("a logout answered 503, sent again: %d %q %v, want 401 (dead here already)", st, body, err)
	}
	mustLogout(live[1])
	live = append(live[:1], live[2:]...)
	log := g.logs()
	if n := strings.Count(log, diskRecoveredLine); n != 1 {
		t.Fatalf("%d log lines %q after space returned, want 1; log:\n%s", n, diskRecoveredLine, log)
	}
	if n := strings.Count(log, diskFailingLine); n != 1 {
		t.Fatalf("%d log lines %q in all, want 1", n, diskFailingLine)
	}

	g.kill() // right after the last answer
	g.start()
	for _, a := range live {
		if a == phoneUser {
			g.wantServed(a, ph.PurePhoneNumber)
		} else {
			g.wantServed(a, "")
		}
	}
	for _, a := range dead {
		g.wantRefused(a)
	}
	t.Logf("%d sessions kept and %d logouts kept across the full disk and a kill -9", len(live), len(dead))
}

// A disk that fills while logins and logouts go on (the file may no
// longer grow: writes within it still succeed, until a transaction needs
// a page past its end), then a kill -9 while it is full. Started again on
// the same file, with room, the gateway loads it (nothing set aside):
// every login answered 200 works and every logout answered 204 stays
// dead, whatever the writes that failed left in the file's free pages.
func TestProcessDiskFullKilled(t *testing.T) {
	g := newGateway(t)
	g.start()
	var live, dead []answered
	for i := range 300 {
		live = append(live, g.mustLogin(fmt.Sprintf("early%d", i)))
	}
	fi, err := os.Stat(g.file)
	if err != nil {
		t.Fatal(err)
	}
	limitFileSize(t, g.proc.Pid(), strconv.FormatInt(fi.Size(), 10))
	const failures = 20 // logins answered 503 before the kill
	logins, refused, logouts := 0, 0, map[int]int{}
	for i := 0; refused < failures && i < 5000; i++ {
		code := fmt.Sprintf("late%d:%d", i%50, i)
		if a, ok := g.login(code); ok {
			live = append(live, a)
			logins++
		} else {
			// (the mock takes a code once: a retry is another code)
			st, body, err := g.do("POST", g.url("/wechat/login"), "", fmt.Sprintf(`{"code":"%s-again"}`, code))
			wantUnavailable(t, "login", st, body, err)
			refused++
		}
		if i%4 == 0 && i/4 < 300 {
			out := live[i/4]
			st, body, err := g.do("POST", g.url("/wechat/logout"), out.token, "")
			switch {
			case err == nil && st == http.StatusNoContent:
				dead = append(dead, out)
			case err == nil && st == http.StatusServiceUnavailable && strings.Contains(body, `"store_unavailable"`):
			default:
				t.Fatalf("logout with the disk filling: %d %q %v", st, body, err)
			}
			logouts[st]++
			live[i/4] = answered{} // answered or not, no longer live
		}
	}
	if refused < failures {
		t.Fatalf("%d logins answered 200 and the disk never filled", logins)
	}
	g.kill()
	g.start()
	kept := 0
	for _, a := range live {
		if a != (answered{}) {
			g.wantServed(a, "")
			kept++
		}
	}
	for _, a := range dead {
		g.wantRefused(a)
	}
	if aside := setAsideFiles(t, g.file); len(aside) > 0 {
		t.Fatalf("the file was set aside after the kill: %v", aside)
	}
	t.Logf("file limited to its %d bytes: %d logins answered 200 before %d answered 503; logouts answered %v; after kill -9: %d sessions served, %d logouts dead",
		fi.Size(), logins, refused, logouts, kept, len(dead))
}
