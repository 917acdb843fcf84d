package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	wechatplatform "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// handlerMetrics are the handler's Prometheus collectors, registered in
// Caddy's own registry of the running config. Labels hold results and API
// names only: never an openid, unionid, phone or token, which would be
// both a leak and an unbounded label set.
type handlerMetrics struct {
	logins      *prometheus.CounterVec
	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec
	requests    *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	decryptions *prometheus.CounterVec
	sessions    prometheus.Collector
	registry    *prometheus.Registry
	labels      prometheus.Labels

	// The pass-through counters, resolved once: the hot path then skips
	// the label hashing of WithLabelValues.
	authorized, anonymous, unauthenticated, forbidden, storeError prometheus.Counter
}

const metricsNamespace, metricsSubsystem = "caddy", "wechat_auth"

// Results of a pass-through decision, as counted in metrics.
const (
	resultAuthorized      = "authorized"
	resultAnonymous       = "anonymous"
	resultUnauthenticated = "unauthenticated"
	resultForbidden       = "forbidden"
	resultStoreError      = "store_error"
)

// newHandlerMetrics registers the collectors of one handler. Every config
// load has a registry of its own; within one, several handlers (several
// sites, or the same app twice) share the collectors that are already
// registered, so a second registration never panics.
func newHandlerMetrics(ctx caddy.Context, appID, platformName string) *handlerMetrics {
	reg := ctx.GetMetricsRegistry()
	labels := prometheus.Labels{"app_id": appID, "platform": platformName}
	m := &handlerMetrics{registry: reg, labels: labels}
	// counter registers (or reuses) a counter vector of ours.
	counter := func(name, help string, labelNames ...string) *prometheus.CounterVec {
		return registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: name, Help: help, ConstLabels: labels,
		}, labelNames))
	}
	m.logins = counter("logins_total",
		"Logins by result (ok, retried, or the error code answered).",
		"result")
	m.apiRequests = counter("api_requests_total",
		"Calls to the platform's server API by API and result.",
		"api", "result")
	m.apiDuration = registerOrReuse(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:        "api_request_duration_seconds",
		Help:        "Latency of calls to the platform's server API.",
		ConstLabels: labels,
		Buckets:     []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"api"}))
	m.requests = counter("requests_total",
		"Pass-through decisions (authorized, anonymous, unauthenticated, forbidden, store_error).",
		"result")
	m.storeErrors = counter("store_errors_total",
		"Failures of the session store by operation (lookup, create_session, delete_session, bind_phone, ...), each answered 503.",
		"operation")
	m.decryptions = counter("decryptions_total",
		"Open data decrypted for /phone (legacy form) and /decrypt, by the key that opened it (current_key, previous_key) or the error code answered.",
		"endpoint", "result")
	m.authorized = m.requests.WithLabelValues(resultAuthorized)
	m.anonymous = m.requests.WithLabelValues(resultAnonymous)
	m.unauthenticated = m.requests.WithLabelValues(resultUnauthenticated)
	m.forbidden = m.requests.WithLabelValues(resultForbidden)
	m.storeError = m.requests.WithLabelValues(resultStoreError)
	return m
}

// watchSessions exports the live session count of store as a gauge, read
// at scrape time.
func (m *handlerMetrics) watchSessions(s store.Store) {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:        "sessions",
		Help:        "Live sessions in the store (-1 when the store cannot be read).",
		ConstLabels: m.labels,
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := s.Count(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	if err := m.registry.Register(g); err == nil {
		m.sessions = g
	}
}

func registerOrReuse[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A different collector under our name: keep counting into the
		// unregistered one rather than failing the config.
	}
	return c
}

func (m *handlerMetrics) login(result string) { m.logins.WithLabelValues(result).Inc() }

// observeAPI records one exchange with the platform's server API. The
// result label is a class (ok, errcode_40029, timeout, ...), bounded and
// secret-free.
func (m *handlerMetrics) observeAPI(api string, elapsed time.Duration, result string) {
	m.apiRequests.WithLabelValues(api, result).Inc()
	m.apiDuration.WithLabelValues(api).Observe(elapsed.Seconds())
}

// apiResult is the result label of an exchange with WeChat that ended
// with err.
func apiResult(err error) string { return platformResult(&wechatplatform.Platform{}, err) }

// platformResult is the result label of an exchange with p's server API
// that ended with err.
func platformResult(p platform.Platform, err error) string {
	if err == nil {
		return "ok"
	}
	if p == nil {
		return "error"
	}
	if code := p.ErrorCode(err); code != "" {
		return "errcode_" + labelSafe(code)
	}
	switch p.Classify(err).Kind {
	case platform.Timeout:
		return "timeout"
	case platform.Unavailable:
		return "unavailable"
	case platform.BadResponse:
		return "bad_response"
	}
	return "error"
}

// labelSafe keeps a platform's code a bounded label value: letters,
// digits, ".", "-" and "_", at most 64 bytes, whatever the answer held.
func labelSafe(code string) string {
	b := []byte(code)
	if len(b) > 64 {
		b = b[:64]
	}
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// close unregisters the session gauge: it holds the store, which the
// next config may have closed.
func (m *handlerMetrics) close() {
	if m.sessions != nil {
		m.registry.Unregister(m.sessions)
	}
}
