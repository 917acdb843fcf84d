// Package caddymodule is the wechat_auth Caddy HTTP handler: it logs
// WeChat Mini Program users in, keeps their sessions in a pluggable store
// (package store and its memorystore and redisstore modules), and forwards
// their identity upstream. It also adds admin API routes and metrics.
//
// The dev-only wechat_mock handler lives apart, in package wechatmock,
// which this package never imports.
package caddymodule

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the handler's configuration.
const (
	DefaultPathPrefix      = "/wechat"
	DefaultSessionTTL      = 720 * time.Hour
	DefaultSessionKeyGrace = 5 * time.Minute
	DefaultBodyTimeout     = 10 * time.Second

	// DefaultRefusedCodeLimit refused login codes per client and
	// DefaultRefusedCodeWindow: see Handler.RefusedCodeLimit.
	DefaultRefusedCodeLimit  = 20
	DefaultRefusedCodeWindow = time.Minute

	// ModeRequired answers 401 to a pass-through request without a token.
	ModeRequired = "required"
	// ModeOptional lets a request without a token through anonymously.
	ModeOptional = "optional"

	// maxBodyBytes caps every endpoint's request body; more is 413.
	maxBodyBytes = 16 << 10
	// keptAnswerWindow is how long a login code keeps its answer (the
	// session it created, or WeChat's refusal): see keptanswer.go.
	keptAnswerWindow = 5 * time.Minute
)

// Ranges of the duration settings, checked at `caddy adapt` (with file
// and line) and again in Validate for JSON configs.
var (
	sessionTTLRange      = caddyconf.Range{Min: time.Minute, Max: 10 * 365 * 24 * time.Hour}
	sessionKeyGraceRange = caddyconf.Range{Min: time.Second, Max: time.Hour, ZeroOff: true}
	timeoutRange         = caddyconf.Range{Min: 100 * time.Millisecond, Max: time.Minute}
	maxDataAgeRange      = caddyconf.Range{Min: time.Second, Max: 30 * 24 * time.Hour, ZeroOff: true}
	bodyTimeoutRange     = caddyconf.Range{Min: time.Second, Max: 5 * time.Minute}
	refusedWindowRange   = caddyconf.Range{Min: time.Second, Max: time.Hour}
)

// Bounds of refused_code_limit's count (0 is off).
const maxRefusedCodeLimit = 100000

// Handler is the wechat_auth HTTP handler. It serves the login endpoints
// under PathPrefix and, for every other request, checks the bearer token
// and forwards the request to the next handler with the user's identity
// in headers, after removing any identity header the client sent.
//
// Sessions are fixed-length: a token expires SessionTTL after the login
// that created it, however often it is used. A fixed expiry keeps the
// pass-through a pure read (no write per request, which matters for the
// Redis store) and makes `expires_in` an honest promise to the client.
type Handler struct {
	// The mini program's AppID (WeChat: wx followed by 16 hex digits;
	// Baidu: the App Key). Required.
	AppID string `json:"app_id,omitempty"`

	// The mini program's AppSecret. Required, except on Alipay, which has
	// none (an app_secret there is an error). Placeholders such as
	// {env.WECHAT_APP_SECRET} are resolved at provision; the JSON config
	// keeps the placeholder.
	AppSecret string `json:"app_secret,omitempty"`

	// Base URL of the platform's server API. Default: the platform's own
	// (WeChat: https://api.weixin.qq.com).
	APIBase string `json:"api_base,omitempty"`

	// The path under which the endpoints (login, phone, decrypt, session,
	// logout) are served. Default: /wechat.
	PathPrefix string `json:"path_prefix,omitempty"`

	// How long a session token lives after login (fixed, not sliding),
	// from 1m to 10 years. Default: 720h (30 days).
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// How long the session key a new login replaced still opens sealed
	// data (the legacy getPhoneNumber form and /decrypt), so that data
	// sealed just before a re-login opens. From 1s to 1h; 0 turns it off.
	// Default: 5m.
	SessionKeyGrace *caddy.Duration `json:"session_key_grace,omitempty"`

	// Time limit of each call to WeChat, from 100ms to 1m. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Time limit for reading the request body of an endpoint (login,
	// phone, decrypt), from 1s to 5m; a client slower than that is
	// answered 408 request_timeout and its connection closed, so slow
	// bodies cannot hold logins open. Default: 10s.
	BodyTimeout caddy.Duration `json:"body_timeout,omitempty"`

	// How many login codes WeChat may refuse (40029, 40163, 41008) for
	// one client ({client_ip}, which honours the server's
	// trusted_proxies; IPv6 clients by /64) within RefusedCodeWindow.
	// After that, the client's logins answer 429 rate_limited with
	// Retry-After until the window is over, without calling WeChat.
	// Refusals are counted, not logins: honest users behind one address
	// send valid codes. From 1 to 100000; 0 turns the limit off.
	// Default: 20.
	RefusedCodeLimit *int `json:"refused_code_limit,omitempty"`

	// The window of RefusedCodeLimit, from 1s to 1h. It starts at a
	// client's first refused code. Default: 1m.
	RefusedCodeWindow caddy.Duration `json:"refused_code_window,omitempty"`

	// What a pass-through request without a token gets: "required" (401)
	// or "optional" (passes on anonymously). Default: required.
	Mode string `json:"mode,omitempty"`

	// Answer 403 phone_required to pass-through requests of users who
	// have not bound a phone number yet. Default: false.
	RequirePhone bool `json:"require_phone,omitempty"`

	// Maximum age of the watermark timestamp of decrypted open data, from
	// 1s to 30 days. Default: 0 (no age check).
	MaxDataAge caddy.Duration `json:"max_data_age,omitempty"`

	// Upstream header carrying the user's openid. Default: X-WeChat-OpenID.
	HeaderOpenID string `json:"header_openid,omitempty"`

	// Upstream header carrying the user's unionid, when WeChat gave one.
	// Default: X-WeChat-UnionID.
	HeaderUnionID string `json:"header_unionid,omitempty"`

	// Upstream header carrying the bound phone number (without country
	// code), once one is bound. Default: X-WeChat-Phone.
	HeaderPhone string `json:"header_phone,omitempty"`

	// Upstream header carrying the bound phone number's country code.
	// Default: X-WeChat-Country-Code.
	HeaderCountryCode string `json:"header_country_code,omitempty"`

	// Upstream header carrying the app id. Default: X-WeChat-AppID.
	HeaderAppID string `json:"header_appid,omitempty"`

	// What the block serves under PathPrefix: "miniprogram", the mini
	// program's endpoints and the pass-through of every other request, or
	// "upstream", the upstream API (signature, check_session) and nothing
	// else: every other request is answered 404 and none is passed on.
	// An upstream block shares the mini program block's sessions when it
	// has the same app_id and store. Default: miniprogram.
	Serve string `json:"serve,omitempty"`

	// The session store module. Default: {"backend": "memory"}.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=wechat_auth.stores inline_key=backend"`

	// The mini-program platform whose server API the handler speaks
	// (package platform): wechat, qq, douyin, kuaishou, baidu, alipay.
	// It sets the defaults of api_base and of the header names
	// (X-QQ-OpenID, ...). Default: {"name": "wechat"}.
	PlatformRaw json.RawMessage `json:"platform,omitempty" caddy:"namespace=wechat_auth.platforms inline_key=name"`

	appID        string
	platform     platform.Platform
	platformName string
	info         platform.Info
	client       *wechat.Client // WeChat's, for what only WeChat has; nil on the other platforms
	store        store.Store
	releaseStore func()
	logger       *zap.Logger
	logins       *singleflight.Group
	metrics      *handlerMetrics
	headers      identityHeaders
	paths        endpointPaths
	refusals     *refusalLimiter // nil when refused_code_limit is off
	storeLog     *storeFailureLog
	releaseReset func()       // the admin API's key reset route
	upstream     *upstreamAPI // nil unless Serve is upstream
}

// endpointPaths are the endpoints' full paths, from PathPrefix.
type endpointPaths struct {
	login, phone, decrypt, session, logout string
}

func newEndpointPaths(prefix string) endpointPaths {
	// "/" and "/wechat/" serve at "/login" and "/wechat/login", never at
	// "//login".
	prefix = strings.TrimRight(prefix, "/")
	return endpointPaths{
		login:   prefix + "/login",
		phone:   prefix + "/phone",
		decrypt: prefix + "/decrypt",
		session: prefix + "/session",
		logout:  prefix + "/logout",
	}
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves placeholders, applies defaults, and opens the WeChat
// client and the session store.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.logins = new(singleflight.Group)

	// Secrets are resolved once, here: the resolved secret lives only
	// inside the wechat client, which never prints it. The JSON config
	// keeps the placeholder, so `caddy adapt` and the admin API's /config
	// never show a secret that comes from the environment.
	pm, err := h.loadPlatform(ctx)
	if err != nil {
		return err
	}
	h.logger = h.logger.With(zap.String("platform", h.platformName))
	repl := caddy.NewReplacer()
	if h.appID, err = caddyconf.Resolve(repl, "app_id", h.AppID); err != nil {
		return err
	}
	secret, err := caddyconf.ResolveSecret(repl, "app_secret", h.AppSecret)
	if err != nil {
		return err
	}
	apiBase, err := caddyconf.Resolve(repl, "api_base", h.APIBase)
	if err != nil {
		return err
	}
	// Checked here rather than in Validate, so that nothing is opened
	// (and must be closed again) for a config that cannot work; a
	// placeholder can be empty at run time.
	if err := checkPlatformAppID(h.info, h.appID); err != nil {
		return err
	}
	if apiBase != "" {
		// Else every call would fail, answered as the client's fault
		// (400), and the secret must go nowhere odd.
		if err := checkAPIBase(apiBase); err != nil {
			return err
		}
	}
	if err := checkPlatformSecret(h.info, !secret.IsZero()); err != nil {
		return err
	}
	h.applyDefaults()

	h.headers = newIdentityHeaders(h)
	h.paths = newEndpointPaths(h.PathPrefix)
	if *h.RefusedCodeLimit > 0 {
		h.refusals = newRefusalLimiter(*h.RefusedCodeLimit, time.Duration(h.RefusedCodeWindow))
	}
	h.metrics = newHandlerMetrics(ctx, h.appID, h.platformName)
	h.storeLog = newStoreFailureLog()
	if err := h.newPlatform(pm, secret, apiBase); err != nil {
		return err
	}
	if h.Serve == ServeUpstream {
		if h.client == nil {
			// signature and check_session are WeChat's server APIs.
			return fmt.Errorf("serve upstream is WeChat's: %s has no user-state signature or checkSessionKey API", h.info.Title)
		}
		h.upstream = newUpstreamAPI(h)
	}
	// From here on the secret lives only inside the client, which redacts
	// it whatever prints it; the config field (a placeholder or, worse,
	// the literal) is not needed again, so nothing that dumps the handler
	// can show it.
	h.AppSecret = ""

	if err := h.openStore(ctx); err != nil {
		return err
	}
	if h.client != nil {
		// The key reset is WeChat's resetUserSessionKey.
		h.releaseReset = registerKeyResetter(h)
	}
	return nil
}

func (h *Handler) applyDefaults() {
	h.PathPrefix = cmp.Or(h.PathPrefix, DefaultPathPrefix)
	h.SessionTTL = cmp.Or(h.SessionTTL, caddy.Duration(DefaultSessionTTL))
	h.Timeout = cmp.Or(h.Timeout, caddy.Duration(wechat.DefaultTimeout))
	h.BodyTimeout = cmp.Or(h.BodyTimeout, caddy.Duration(DefaultBodyTimeout))
	h.RefusedCodeWindow = cmp.Or(h.RefusedCodeWindow, caddy.Duration(DefaultRefusedCodeWindow))
	h.Mode = cmp.Or(h.Mode, ModeRequired)
	h.Serve = cmp.Or(h.Serve, ServeMiniProgram)
	// The platform's header names (X-QQ-OpenID, ...); WeChat's when the
	// platform is not known yet.
	defaults := platform.DefaultHeaders(cmp.Or(h.info.HeaderPrefix, "X-WeChat"))
	h.HeaderOpenID = cmp.Or(h.HeaderOpenID, defaults[0])
	h.HeaderUnionID = cmp.Or(h.HeaderUnionID, defaults[1])
	h.HeaderPhone = cmp.Or(h.HeaderPhone, defaults[2])
	h.HeaderCountryCode = cmp.Or(h.HeaderCountryCode, defaults[3])
	h.HeaderAppID = cmp.Or(h.HeaderAppID, defaults[4])
	if h.SessionKeyGrace == nil {
		grace := caddy.Duration(DefaultSessionKeyGrace)
		h.SessionKeyGrace = &grace
	}
	if h.RefusedCodeLimit == nil {
		limit := DefaultRefusedCodeLimit
		h.RefusedCodeLimit = &limit
	}
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if err := checkMode(h.Mode); err != nil {
		return err
	}
	if err := checkServe(h.Serve); err != nil {
		return err
	}
	if err := checkPathPrefix(h.PathPrefix); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		v    caddy.Duration
		r    caddyconf.Range
	}{
		{"session_ttl", h.SessionTTL, sessionTTLRange},
		{"session_key_grace", *h.SessionKeyGrace, sessionKeyGraceRange},
		{"timeout", h.Timeout, timeoutRange},
		{"max_data_age", h.MaxDataAge, maxDataAgeRange},
		{"body_timeout", h.BodyTimeout, bodyTimeoutRange},
		{"refused_code_window", h.RefusedCodeWindow, refusedWindowRange},
	} {
		if err := c.r.Check(c.name, time.Duration(c.v)); err != nil {
			return err
		}
	}
	if err := caddyconf.CheckInt("refused_code_limit", *h.RefusedCodeLimit, 0, maxRefusedCodeLimit); err != nil {
		return err
	}
	return checkHeaderNames(h)
}

// Cleanup releases the metrics collectors and the store's admin
// registration. The store module itself was loaded through the context,
// so Caddy cleans it up, which is where the store's usage count drops.
func (h *Handler) Cleanup() error {
	if h.metrics != nil {
		h.metrics.close()
	}
	if h.releaseStore != nil {
		h.releaseStore()
	}
	if h.releaseReset != nil {
		h.releaseReset()
	}
	return nil
}

// ServeHTTP dispatches to the endpoints under PathPrefix and handles
// every other request as a pass-through.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Before anything else, and for every request: a client must never be
	// able to pose as a user by sending the identity headers itself.
	h.headers.strip(r)
	if h.upstream != nil {
		return h.serveUpstreamAPI(w, r)
	}

	switch r.URL.Path {
	case h.paths.login:
		return h.endpoint(w, r, http.MethodPost, h.serveLogin)
	case h.paths.phone:
		return h.endpoint(w, r, http.MethodPost, h.authenticated(h.servePhone))
	case h.paths.decrypt:
		return h.endpoint(w, r, http.MethodPost, h.authenticated(h.serveDecrypt))
	case h.paths.session:
		return h.endpoint(w, r, http.MethodGet, h.authenticated(h.serveSession))
	case h.paths.logout:
		return h.endpoint(w, r, http.MethodPost, h.authenticated(h.serveLogout))
	}
	return h.passThrough(w, r, next)
}

// endpoint checks the method before calling serve.
func (h *Handler) endpoint(w http.ResponseWriter, r *http.Request, method string, serve func(http.ResponseWriter, *http.Request) error) error {
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", method)
		return writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "this endpoint accepts "+method+" only")
	}
	return serve(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
