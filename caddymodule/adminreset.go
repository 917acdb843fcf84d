package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// keyResetter is what the admin API needs to reset a user's session key
// in one app: the app's WeChat client and store.
type keyResetter struct {
	appID  string
	client *wechat.Client
	store  store.Store
}

// Destruct lets a keyResetter live in a caddy.UsagePool.
func (keyResetter) Destruct() error { return nil }

// keyResetters indexes the apps of every provisioned handler for the
// admin API, which lives outside any HTTP config. It is a UsagePool, as
// the store registry (store.Live) is, for the same reason: a reload
// registers the new config's handlers before the old config releases its
// own, so the admin API never sees a window without them.
var keyResetters = caddy.NewUsagePool()

// registerKeyResetter makes h's app reachable by the admin API's reset
// route until release is called.
func registerKeyResetter(h *Handler) (release func()) {
	key := fmt.Sprintf("%s\x00%p", h.appID, h)
	keyResetters.LoadOrStore(key, keyResetter{appID: h.appID, client: h.client, store: h.store})
	return func() { _, _ = keyResetters.Delete(key) }
}

// liveKeyResetters returns one resetter per app and store, of one app
// when appID is not empty, sorted by app id.
func liveKeyResetters(appID string) []keyResetter {
	seen := map[store.Store]bool{}
	var out []keyResetter
	keyResetters.Range(func(_, v any) bool {
		kr := v.(keyResetter)
		if (appID == "" || kr.appID == appID) && !seen[kr.store] {
			seen[kr.store] = true
			out = append(out, kr)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].appID < out[j].appID })
	return out
}

// resetKeySuffix ends the path of the reset route:
// POST /wechat_auth/users/<openid>/reset_session_key.
const resetKeySuffix = "/reset_session_key"

// usersRoute serves the routes under /wechat_auth/users/: the reset of a
// user's session key, and (every other path) the revocation.
func (a AdminAPI) usersRoute() caddy.AdminHandler {
	revoke := adminRoute(http.MethodDelete, a.handleUser)
	reset := adminRoute(http.MethodPost, a.handleResetKey)
	return caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if strings.HasSuffix(r.URL.Path, resetKeySuffix) {
			return reset.ServeHTTP(w, r)
		}
		return revoke.ServeHTTP(w, r)
	})
}

// Results of a reset, per app.
const (
	resetDone       = "reset"             // WeChat made a new key; every session of the user has it
	resetNoSession  = "no_session"        // the user has no live session in this app: nothing to reset
	resetKeyInvalid = "key_invalid"       // WeChat no longer holds the key we have: it opens nothing; the user must log in again
	resetByLogin    = "replaced_by_login" // a login made a newer key meanwhile, which stands
)

// handleResetKey serves POST
// /wechat_auth/users/<openid>/reset_session_key[?app_id=<appid>], for a
// session key believed leaked: WeChat replaces the user's key
// (resetUserSessionKey), and every session of the user gets the new one,
// keeping its expiry; the replaced key no longer opens sealed data (the
// session key grace is dropped). With the Redis store every gateway
// sharing it has the new key at once. The answer never holds a key.
func (AdminAPI) handleResetKey(ctx context.Context, r *http.Request) (any, error) {
	openid := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/wechat_auth/users/"), resetKeySuffix)
	if !validOpenID(openid) {
		return nil, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("the path must be /wechat_auth/users/<openid>%s", resetKeySuffix)}
	}
	type appResult struct {
		AppID  string `json:"app_id"`
		Result string `json:"result"`
	}
	out := struct {
		OpenID string      `json:"openid"`
		Apps   []appResult `json:"apps"`
	}{OpenID: openid, Apps: []appResult{}}
	for _, kr := range liveKeyResetters(r.URL.Query().Get("app_id")) {
		result, err := kr.reset(ctx, openid)
		if err != nil {
			return nil, err
		}
		caddy.Log().Named("admin.api.wechat_auth").Info("session key reset",
			zap.String("app_id", kr.appID), zap.String("openid", openid), zap.String("result", result))
		out.Apps = append(out.Apps, appResult{AppID: kr.appID, Result: result})
	}
	return out, nil
}

// reset resets openid's key in kr's app. Its errors are the admin API's
// answers, and name no key.
func (kr keyResetter) reset(ctx context.Context, openid string) (string, error) {
	unavailable := caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("app %s: the session store is unavailable", kr.appID)}
	u, err := kr.store.User(ctx, openid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return resetNoSession, nil
	case err != nil:
		return "", unavailable
	}
	sess, err := kr.client.ResetUserSessionKey(ctx, openid, u.SessionKey)
	switch {
	case wechat.IsInvalidSignature(err), errors.Is(err, wechat.ErrInvalidInput):
		return resetKeyInvalid, nil
	case err != nil:
		f := classifyWeChatError(err)
		return "", caddy.APIError{HTTPStatus: f.status, Err: fmt.Errorf("app %s: WeChat did not reset the key: %s (%s)", kr.appID, f.code, apiResult(err))}
	}
	replaced, err := kr.store.ReplaceSessionKey(ctx, openid, u.SessionKey, sess.SessionKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return resetNoSession, nil
	case err != nil:
		return "", unavailable
	case !replaced:
		return resetByLogin, nil
	}
	return resetDone, nil
}
