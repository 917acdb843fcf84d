package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is the admin.api.wechat_auth module: routes on Caddy's admin
// endpoint to revoke a user's sessions, reset a user's session key and
// read session counts.
//
// It adds no authentication of its own: it is exactly as protected as the
// admin endpoint (by default localhost:2019 only; see Caddy's `admin`
// global option for a unix socket, origins, or remote admin with mTLS).
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.wechat_auth",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (a AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/wechat_auth/users/", Handler: a.usersRoute()},
		{Pattern: "/wechat_auth/stats", Handler: adminRoute(http.MethodGet, a.handleStats)},
	}
}

// adminRoute checks the method, bounds the work by a deadline (a Redis
// store that hangs must not hold the admin endpoint) and writes serve's
// answer as JSON.
func adminRoute(method string, serve func(ctx context.Context, r *http.Request) (any, error)) caddy.AdminHandler {
	return caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != method {
			return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed; use %s", method)}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		out, err := serve(ctx, r)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(out)
	})
}

// handleUser serves DELETE /wechat_auth/users/<openid>[?app_id=<appid>]:
// every session of the user is revoked, in every app unless app_id
// narrows it (openids are per app, so that is only a safety net). With the
// Redis store the revocation reaches every gateway sharing it.
func (AdminAPI) handleUser(ctx context.Context, r *http.Request) (any, error) {
	openid := strings.TrimPrefix(r.URL.Path, "/wechat_auth/users/")
	if openid == "" || strings.Contains(openid, "/") || len(openid) > 128 {
		return nil, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("the path must be /wechat_auth/users/<openid>")}
	}
	type appResult struct {
		AppID   string `json:"app_id"`
		Revoked int    `json:"revoked"`
	}
	result := struct {
		OpenID  string      `json:"openid"`
		Revoked int         `json:"revoked"`
		Apps    []appResult `json:"apps"`
	}{OpenID: openid, Apps: []appResult{}}
	for _, ls := range store.Live(r.URL.Query().Get("app_id")) {
		n, err := ls.Store.RevokeUser(ctx, openid)
		if err != nil {
			return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("app %s: the session store is unavailable", ls.AppID)}
		}
		result.Revoked += n
		result.Apps = append(result.Apps, appResult{AppID: ls.AppID, Revoked: n})
	}
	return result, nil
}

// handleStats serves GET /wechat_auth/stats: session counts per app, and
// nothing about any user.
func (AdminAPI) handleStats(ctx context.Context, r *http.Request) (any, error) {
	type appStats struct {
		AppID    string `json:"app_id"`
		Store    string `json:"store"`
		Sessions int    `json:"sessions"`
		Error    string `json:"error,omitempty"`
	}
	out := struct {
		Apps []appStats `json:"apps"`
	}{Apps: []appStats{}}
	for _, ls := range store.Live(r.URL.Query().Get("app_id")) {
		st := appStats{AppID: ls.AppID, Store: ls.Kind}
		n, err := ls.Store.Count(ctx)
		if err != nil {
			st.Sessions, st.Error = -1, "store unavailable"
		} else {
			st.Sessions = n
		}
		out.Apps = append(out.Apps, st)
	}
	return out, nil
}

// Interface guard
var _ caddy.AdminRouter = (*AdminAPI)(nil)
