// Package caddymodule holds the Caddy modules of caddy-wechat-auth: the
// wechat_auth HTTP handler that logs WeChat Mini Program users in and
// forwards their identity upstream, its session stores, and the
// wechat_mock dev handler.
package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the handler's configuration.
const (
	DefaultPathPrefix    = "/wechat"
	DefaultSessionTTL    = 720 * time.Hour
	DefaultHeaderOpenID  = "X-WeChat-OpenID"
	DefaultHeaderUnionID = "X-WeChat-UnionID"
	DefaultHeaderPhone   = "X-WeChat-Phone"
	DefaultHeaderCountry = "X-WeChat-Country-Code"
	DefaultHeaderAppID   = "X-WeChat-AppID"

	// ModeRequired answers 401 to a pass-through request without a token.
	ModeRequired = "required"
	// ModeOptional lets a request without a token through anonymously.
	ModeOptional = "optional"

	// maxBodyBytes caps every endpoint's request body; more is 413.
	maxBodyBytes = 16 << 10
	// loginRetryWindow is how long a login code keeps answering with the
	// session it created, for clients retrying after a lost answer.
	loginRetryWindow = 5 * time.Minute
)

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
	// The mini program's AppID (wx...). Required.
	AppID string `json:"app_id,omitempty"`

	// The mini program's AppSecret. Required. Placeholders such as
	// {env.WECHAT_APP_SECRET} are resolved at provision.
	AppSecret string `json:"app_secret,omitempty"`

	// Base URL of the WeChat server API. Default: https://api.weixin.qq.com.
	APIBase string `json:"api_base,omitempty"`

	// The path under which the endpoints (login, phone, decrypt, session,
	// logout) are served. Default: /wechat.
	PathPrefix string `json:"path_prefix,omitempty"`

	// How long a session token lives after login (fixed, not sliding).
	// Default: 720h (30 days).
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// Time limit of each call to WeChat. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// What a pass-through request without a token gets: "required" (401)
	// or "optional" (passes on anonymously). Default: required.
	Mode string `json:"mode,omitempty"`

	// Answer 403 phone_required to pass-through requests of users who
	// have not bound a phone number yet. Default: false.
	RequirePhone bool `json:"require_phone,omitempty"`

	// Maximum age of the watermark timestamp of decrypted open data.
	// Default: 0 (no age check).
	MaxDataAge caddy.Duration `json:"max_data_age,omitempty"`

	// Upstream header names. Defaults: X-WeChat-OpenID, X-WeChat-UnionID,
	// X-WeChat-Phone, X-WeChat-Country-Code, X-WeChat-AppID.
	HeaderOpenID      string `json:"header_openid,omitempty"`
	HeaderUnionID     string `json:"header_unionid,omitempty"`
	HeaderPhone       string `json:"header_phone,omitempty"`
	HeaderCountryCode string `json:"header_country_code,omitempty"`
	HeaderAppID       string `json:"header_appid,omitempty"`

	// The session store module. Default: {"backend": "memory"}.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=wechat_auth.stores inline_key=backend"`

	store   Store
	client  *wechat.Client
	logger  *zap.Logger
	logins  *singleflight.Group
	metrics *handlerMetrics
	liveKey string // this handler's entry in liveStores

	// identityHeaders are the header names stripped from every request,
	// in the folded form of foldHeaderName.
	identityHeaders []string

	// The header names in canonical form, computed once: r.Header.Set
	// would canonicalise (and allocate a new string) on every request.
	canonOpenID, canonUnionID, canonPhone, canonCountryCode, canonAppID string

	// appIDValue is the app id boxed once for the replacer: boxing a
	// string into an interface allocates, on every request.
	appIDValue any

	// endpoint paths, precomputed from PathPrefix.
	pathLogin, pathPhone, pathDecrypt, pathSession, pathLogout string
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves placeholders, applies defaults, and opens the
// session store and the WeChat client.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.logins = new(singleflight.Group)
	repl := caddy.NewReplacer()

	// Resolve secrets once, here: the resolved secret lives only inside the
	// wechat client, which never prints it. The JSON config keeps the
	// placeholder, so `caddy adapt` and the admin API's /config never show
	// the real secret when it comes from the environment.
	appID, err := repl.ReplaceOrErr(h.AppID, true, true)
	if err != nil {
		return fmt.Errorf("wechat_auth: app_id: %v", err)
	}
	secret, err := repl.ReplaceOrErr(h.AppSecret, true, true)
	if err != nil {
		// The error names the placeholder, never its value.
		return fmt.Errorf("wechat_auth: app_secret: %v", err)
	}
	apiBase := repl.ReplaceKnown(h.APIBase, "")
	if apiBase == "" {
		apiBase = wechat.DefaultBaseURL
	}
	if h.PathPrefix == "" {
		h.PathPrefix = DefaultPathPrefix
	}
	h.PathPrefix = "/" + strings.Trim(h.PathPrefix, "/")
	if h.SessionTTL == 0 {
		h.SessionTTL = caddy.Duration(DefaultSessionTTL)
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(wechat.DefaultTimeout)
	}
	if h.Mode == "" {
		h.Mode = ModeRequired
	}
	setDefault(&h.HeaderOpenID, DefaultHeaderOpenID)
	setDefault(&h.HeaderUnionID, DefaultHeaderUnionID)
	setDefault(&h.HeaderPhone, DefaultHeaderPhone)
	setDefault(&h.HeaderCountryCode, DefaultHeaderCountry)
	setDefault(&h.HeaderAppID, DefaultHeaderAppID)
	h.canonOpenID = textproto.CanonicalMIMEHeaderKey(h.HeaderOpenID)
	h.canonUnionID = textproto.CanonicalMIMEHeaderKey(h.HeaderUnionID)
	h.canonPhone = textproto.CanonicalMIMEHeaderKey(h.HeaderPhone)
	h.canonCountryCode = textproto.CanonicalMIMEHeaderKey(h.HeaderCountryCode)
	h.canonAppID = textproto.CanonicalMIMEHeaderKey(h.HeaderAppID)
	h.identityHeaders = []string{
		foldHeaderName(h.HeaderOpenID),
		foldHeaderName(h.HeaderUnionID),
		foldHeaderName(h.HeaderPhone),
		foldHeaderName(h.HeaderCountryCode),
		foldHeaderName(h.HeaderAppID),
	}
	h.pathLogin = h.PathPrefix + "/login"
	h.pathPhone = h.PathPrefix + "/phone"
	h.pathDecrypt = h.PathPrefix + "/decrypt"
	h.pathSession = h.PathPrefix + "/session"
	h.pathLogout = h.PathPrefix + "/logout"

	// Refuse a config without an app id or secret (a placeholder can be
	// empty at run time) before opening anything that must then be closed.
	if appID == "" {
		return fmt.Errorf("wechat_auth: app_id is required")
	}
	if secret == "" {
		return fmt.Errorf("wechat_auth: app_secret is required")
	}

	h.metrics = newHandlerMetrics(ctx, appID)

	opts := []wechat.Option{
		wechat.WithBaseURL(apiBase),
		wechat.WithTimeout(time.Duration(h.Timeout)),
		wechat.WithMaxDataAge(time.Duration(h.MaxDataAge)),
		wechat.WithObserver(h.metrics.observeAPI),
	}
	h.client = wechat.NewClient(appID, secret, opts...)
	// From here on the secret lives only inside the client, which redacts
	// it whatever prints it; the config field (a placeholder or, worse, the
	// literal) is not needed again, so nothing that dumps the handler can
	// show it.
	h.AppSecret = ""
	h.appIDValue = appID

	if h.StoreRaw == nil {
		h.StoreRaw = json.RawMessage(`{"backend":"memory"}`)
	}
	mod, err := ctx.LoadModule(h, "StoreRaw")
	if err != nil {
		return fmt.Errorf("wechat_auth: loading session store: %v", err)
	}
	storeMod, ok := mod.(StoreModule)
	if !ok {
		return fmt.Errorf("wechat_auth: module %T is not a session store", mod)
	}
	h.store, err = storeMod.Open(ctx, appID)
	if err != nil {
		return fmt.Errorf("wechat_auth: opening session store: %v", err)
	}
	h.metrics.watchSessions(h.store)
	h.liveKey = registerLiveStore(appID, storeMod.CaddyModule().ID.Name(), h.store)
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.Mode != ModeRequired && h.Mode != ModeOptional {
		return fmt.Errorf("wechat_auth: mode must be %q or %q, got %q", ModeRequired, ModeOptional, h.Mode)
	}
	if h.SessionTTL < 0 {
		return fmt.Errorf("wechat_auth: session_ttl must be positive")
	}
	if h.Timeout < 0 {
		return fmt.Errorf("wechat_auth: timeout must be positive")
	}
	if h.MaxDataAge < 0 {
		return fmt.Errorf("wechat_auth: max_data_age must not be negative")
	}
	return nil
}

// Cleanup releases the metrics collectors. The store module loaded in
// Provision is cleaned up by Caddy itself (it was loaded through the
// context), which is where the store's usage count drops.
func (h *Handler) Cleanup() error {
	if h.metrics != nil {
		h.metrics.close()
	}
	if h.liveKey != "" {
		_, _ = liveStores.Delete(h.liveKey)
	}
	return nil
}

// ServeHTTP dispatches to the endpoints under PathPrefix and handles
// every other request as a pass-through.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Before anything else, and for every request: a client must never be
	// able to pose as a user by sending the identity headers itself.
	h.stripIdentityHeaders(r.Header)

	switch r.URL.Path {
	case h.pathLogin:
		return h.endpoint(w, r, http.MethodPost, h.serveLogin)
	case h.pathPhone:
		return h.endpoint(w, r, http.MethodPost, h.authenticated(h.servePhone))
	case h.pathDecrypt:
		return h.endpoint(w, r, http.MethodPost, h.authenticated(h.serveDecrypt))
	case h.pathSession:
		return h.endpoint(w, r, http.MethodGet, h.authenticated(h.serveSession))
	case h.pathLogout:
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

func setDefault(field *string, def string) {
	if *field == "" {
		*field = def
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
