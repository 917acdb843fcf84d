package caddymodule

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	// Every platform of the contract is in every build: `xcaddy --with`
	// the plugin has them all.
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/alipay"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/baidu"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/douyin"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/kuaishou"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/qq"
	wechatplatform "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/wechat"
)

// defaultPlatform is the platform of a handler that names none.
const defaultPlatform = "wechat"

// loadPlatform loads the platform module (WeChat by default): its Info
// decides the app id check, the secret rule and the header defaults.
func (h *Handler) loadPlatform(ctx caddy.Context) (platform.Module, error) {
	if h.PlatformRaw == nil {
		h.PlatformRaw = json.RawMessage(`{"name":"` + defaultPlatform + `"}`)
	}
	var named struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(h.PlatformRaw, &named); err != nil || named.Name == "" {
		return nil, fmt.Errorf(`platform must be an object with a "name": %s`, knownPlatforms())
	}
	mod, err := ctx.LoadModule(h, "PlatformRaw")
	if err != nil {
		return nil, fmt.Errorf("loading platform %q (%s): %v", named.Name, knownPlatforms(), err)
	}
	pm, ok := mod.(platform.Module)
	if !ok {
		return nil, fmt.Errorf("module %T is not a platform", mod)
	}
	h.platformName = named.Name
	h.info = pm.Info()
	return pm, nil
}

// checkPlatformAppID checks the app id against the platform.
func checkPlatformAppID(info platform.Info, appID string) error {
	if appID == "" {
		return fmt.Errorf("app_id is required (is its environment variable set?)")
	}
	if info.CheckAppID != nil {
		return info.CheckAppID(appID)
	}
	return nil
}

// checkPlatformSecret checks that there is an app secret where the
// platform has one, and none where it has none.
func checkPlatformSecret(info platform.Info, hasSecret bool) error {
	switch {
	case info.NoSecret && hasSecret:
		return fmt.Errorf("%s has no app_secret (its calls are signed with the app's private key): remove app_secret", info.Title)
	case !info.NoSecret && !hasSecret:
		return fmt.Errorf("app_secret is required (is its environment variable set?)")
	}
	return nil
}

// newPlatform makes the app's client of the platform.
func (h *Handler) newPlatform(pm platform.Module, secret caddyconf.Secret, apiBase string) error {
	p, err := pm.New(platform.App{
		AppID:      h.appID,
		AppSecret:  secret.Reveal(),
		APIBase:    cmp.Or(apiBase, h.info.APIBase),
		Timeout:    time.Duration(h.Timeout),
		MaxDataAge: time.Duration(h.MaxDataAge),
		Observe: func(api string, elapsed time.Duration, err error) {
			h.metrics.observeAPI(api, elapsed, platformResult(h.platform, err))
		},
	})
	if err != nil {
		return err
	}
	h.platform = p
	// What only WeChat has (the phone code API, the upstream API) goes
	// straight to its client.
	if wp, ok := p.(*wechatplatform.Platform); ok {
		h.client = wp.Client
	}
	return nil
}

// api is the handler's platform. A Handler holding only a WeChat client
// speaks WeChat.
func (h *Handler) api() platform.Platform {
	if h.platform == nil && h.client != nil {
		return wechatplatform.Wrap(h.client)
	}
	return h.platform
}

// keyAppID is the app id that keys and seals kept login answers.
func (h *Handler) keyAppID() string {
	if h.client != nil {
		return h.client.AppID()
	}
	return h.appID
}

// failure is how an error of the platform (or a remembered refusal) is
// answered.
func (h *Handler) failure(err error) wechatFailure {
	var rc refusedCode
	if errors.As(err, &rc) {
		return failureAnswer(platform.Failure{Kind: platform.InvalidCode}, h.info)
	}
	return failureAnswer(h.api().Classify(err), h.info)
}

// isInvalidCode reports whether err is the platform refusing a login code.
func (h *Handler) isInvalidCode(err error) bool {
	return err != nil && h.api().Classify(err).Kind == platform.InvalidCode
}

// errcodeField logs the platform's own code, when the error carries one:
// WeChat's as a number, as it always was, the others' as text.
func (h *Handler) errcodeField(err error) zap.Field {
	if h.client != nil || h.platform == nil {
		return errcodeField(err)
	}
	var kc keptCode
	if errors.As(err, &kc) {
		return zap.String("errcode", kc.code)
	}
	if code := h.platform.ErrorCode(err); code != "" {
		return zap.String("errcode", code)
	}
	return zap.Skip()
}

// identityHeaderNames are the names every request is stripped of: the
// handler's own five, and the defaults of every platform of the build, so
// that behind one upstream a request through one platform's site cannot
// carry another platform's identity.
func identityHeaderNames(h *Handler) []string {
	var names []string
	for _, f := range headerFields(h) {
		names = append(names, f.value)
	}
	infos, known := platform.Registered()
	for _, name := range known {
		defaults := platform.DefaultHeaders(infos[name].HeaderPrefix)
		names = append(names, defaults[:]...)
	}
	seen := make(map[string]bool)
	out := names[:0]
	for _, n := range names {
		if f := foldHeaderName(n); !seen[f] {
			seen[f] = true
			out = append(out, n)
		}
	}
	return out
}

// unmarshalPlatform parses `platform <name> [{ ... }]`.
func (h *Handler) unmarshalPlatform(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("platform needs a name: %s", knownPlatforms())
	}
	if h.PlatformRaw != nil {
		return d.Err("platform already specified")
	}
	name := d.Val()
	mi, err := caddy.GetModule(platform.Namespace + "." + name)
	if err != nil {
		return d.Errf("unknown platform %q: the platforms in this build are %s", name, knownPlatforms())
	}
	unm, err := caddyfile.UnmarshalModule(d, platform.Namespace+"."+name)
	if err != nil {
		return err
	}
	if pm, ok := mi.New().(platform.Module); ok {
		h.info = pm.Info()
	}
	h.PlatformRaw = caddyconfig.JSONModuleObject(unm, "name", name, nil)
	return nil
}

// knownPlatforms lists the platform modules of this build.
func knownPlatforms() string {
	_, names := platform.Registered()
	return strings.Join(names, ", ")
}

// noSealedData answers an endpoint that needs session-key sealed data on
// a platform without it.
func (h *Handler) noSealedData(w http.ResponseWriter, what string) error {
	return writeError(w, http.StatusBadRequest, codeInvalidRequest,
		h.info.Title+" has no session-key sealed data: "+what)
}
