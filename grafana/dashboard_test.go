// Package grafana holds the operator's dashboard (wechat-auth.json, a
// Grafana dashboard in the classic JSON model, importable as is) and its
// check: every query of every panel, asked of a real Prometheus that
// scrapes a real gateway under a little traffic, returns series.
package grafana

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dashboard is the part of Grafana's classic dashboard model the checks
// read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Inputs        []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile("wechat-auth.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("wechat-auth.json: %v", err)
	}
	return d
}

// TestDashboardImportable checks what Grafana's import needs of a
// dashboard shared as a file: the classic model's required fields, a
// datasource input that every panel and query uses (so the import asks
// which Prometheus), unique panel ids and a place on the grid for each.
func TestDashboardImportable(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Fatalf("uid %q, title %q, schemaVersion %d: need a uid, a title and schemaVersion >= 36", d.UID, d.Title, d.SchemaVersion)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Fatalf("__inputs = %+v, want one prometheus datasource input DS_PROMETHEUS", d.Inputs)
	}
	want := datasource{Type: "prometheus", UID: "${DS_PROMETHEUS}"}
	seen := map[int]bool{}
	for _, p := range d.Panels {
		if seen[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		seen[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q has no gridPos", p.Title)
		}
		if p.Datasource != want {
			t.Errorf("panel %q datasource %+v, want %+v", p.Title, p.Datasource, want)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Datasource != want || q.Expr == "" || q.RefID == "" {
				t.Errorf("panel %q query %q: datasource %+v, refId %q", p.Title, q.Expr, q.Datasource, q.RefID)
			}
		}
	}
	if len(d.Panels) < 8 {
		t.Errorf("%d panels; the dashboard shows logins, refused codes, API calls and latency, pass-through, store errors, sealed data and sessions", len(d.Panels))
	}
}

// TestDashboardQueriesReturnSeries runs a gateway (logins, a retried
// code, refused codes up to the limit, pass-through with and without a
// token, a sealed phone number, then a Redis outage for store errors),
// lets Debian's prometheus scrape its metrics, and asks that Prometheus
// every query of the dashboard.
func TestDashboardQueriesReturnSeries(t *testing.T) {
	prom := need(t, "prometheus")
	redisBin := need(t, "redis-server")
	d := loadDashboard(t)

	redisAddr := startRedis(t, redisBin)
	gw := startGateway(t, redisAddr.addr)
	gw.traffic(t)
	redisAddr.stop()
	gw.storeOutageTraffic(t)

	promURL := startPrometheus(t, prom, gw.adminAddr)
	waitScrapes(t, promURL, 3)

	vars := strings.NewReplacer("$__rate_interval", "1m", "$app_id", ".*", "$platform", ".*")
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			expr := vars.Replace(q.Expr)
			n := 0
			deadline := time.Now().Add(20 * time.Second)
			for {
				var err error
				if n, err = querySeries(promURL, expr); err != nil {
					t.Fatalf("panel %q: %s: %v", p.Title, expr, err)
				}
				if n > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if n == 0 {
				t.Errorf("panel %q: %s returned no series", p.Title, expr)
			}
		}
	}
	for _, v := range d.Templating.List {
		// label_values(metric, label): the values Grafana offers.
		def := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
		metric, label, ok := strings.Cut(def, ",")
		if !ok {
			t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		label = strings.TrimSpace(label)
		n, err := querySeries(promURL, fmt.Sprintf("count by (%s) (%s{%s!=\"\"})", label, strings.TrimSpace(metric), label))
		if err != nil || n == 0 {
			t.Errorf("variable %s: %s offers no value (%v)", v.Name, v.Definition, err)
		}
	}
}

// need finds a program, or skips (fails under CI=true: .ci/install-deps.sh
// installs it).
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; CI installs it (.ci/install-deps.sh)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs prometheus scraping target's /metrics every
// second, and returns its URL.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: caddy
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, target)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("prometheus log:\n%s", tail(out, 3000))
		}
	})
	base := "http://" + addr
	waitFor(t, 30*time.Second, "prometheus to answer", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// waitScrapes waits until Prometheus has scraped the gateway n times
// since now.
func waitScrapes(t *testing.T, promURL string, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d scrapes of the gateway", n), func() bool {
		got, err := querySeries(promURL, fmt.Sprintf(`count_over_time(up{job="caddy"}[1m]) >= %d and up{job="caddy"} == 1`, n))
		return err == nil && got > 0
	})
}

// querySeries evaluates expr now and counts the series of the answer.
func querySeries(promURL, expr string) (int, error) {
	resp, err := http.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return 0, err
	}
	if answer.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s", answer.Error)
	}
	return len(answer.Data.Result), nil
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
