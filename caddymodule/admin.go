package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// liveStores indexes the stores of every provisioned wechat_auth handler,
// so that the admin API (which lives outside any HTTP config) can reach
// them. It is a UsagePool like the stores themselves: a handler adds its
// store at Provision and removes it at Cleanup, and a reload swaps them
// without a window where the admin API sees none.
var liveStores = caddy.NewUsagePool()

type liveStore struct {
	appID string
	kind  string
	store Store
}

func (liveStore) Destruct() error { return nil }

// registerLiveStore makes a handler's store reachable by the admin API and
// returns the key to release at Cleanup.
func registerLiveStore(appID, kind string, store Store) string {
	key := fmt.Sprintf("%s\x00%s\x00%p", appID, kind, store)
	liveStores.LoadOrStore(key, liveStore{appID: appID, kind: kind, store: store})
	return key
}

// AdminAPI is the admin.api.wechat_auth module: routes on Caddy's admin
// endpoint to revoke a user's sessions and read session counts.
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
		{Pattern: "/wechat_auth/users/", Handler: caddy.AdminHandlerFunc(a.handleUser)},
		{Pattern: "/wechat_auth/stats", Handler: caddy.AdminHandlerFunc(a.handleStats)},
	}
}

// stores returns the distinct live stores, optionally of one app.
func (AdminAPI) stores(appID string) []liveStore {
	seen := map[Store]bool{}
	var out []liveStore
	liveStores.Range(func(_, v any) bool {
		ls := v.(liveStore)
		if (appID == "" || ls.appID == appID) && !seen[ls.store] {
			seen[ls.store] = true
			out = append(out, ls)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].appID < out[j].appID })
	return out
}

// handleUser serves DELETE /wechat_auth/users/<openid>[?app_id=<appid>]:
// every session of the user is revoked, in every app unless app_id
// narrows it (openids are per app, so that is only a safety net). With the
// Redis store the revocation reaches every gateway sharing it.
func (a AdminAPI) handleUser(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodDelete {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed; use DELETE")}
	}
	openid := strings.TrimPrefix(r.URL.Path, "/wechat_auth/users/")
	if openid == "" || strings.Contains(openid, "/") || len(openid) > 128 {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("the path must be /wechat_auth/users/<openid>")}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	type appResult struct {
		AppID   string `json:"app_id"`
		Revoked int    `json:"revoked"`
	}
	result := struct {
		OpenID  string      `json:"openid"`
		Revoked int         `json:"revoked"`
		Apps    []appResult `json:"apps"`
	}{OpenID: openid, Apps: []appResult{}}
	for _, ls := range a.stores(r.URL.Query().Get("app_id")) {
		n, err := ls.store.RevokeUser(ctx, openid)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("app %s: the session store is unavailable", ls.appID)}
		}
		result.Revoked += n
		result.Apps = append(result.Apps, appResult{AppID: ls.appID, Revoked: n})
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(result)
}

// handleStats serves GET /wechat_auth/stats: session counts per app, and
// nothing about any user.
func (a AdminAPI) handleStats(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed; use GET")}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	type appStats struct {
		AppID    string `json:"app_id"`
		Store    string `json:"store"`
		Sessions int    `json:"sessions"`
		Error    string `json:"error,omitempty"`
	}
	out := struct {
		Apps []appStats `json:"apps"`
	}{Apps: []appStats{}}
	for _, ls := range a.stores(r.URL.Query().Get("app_id")) {
		st := appStats{AppID: ls.appID, Store: ls.kind}
		n, err := ls.store.Count(ctx)
		if err != nil {
			st.Sessions, st.Error = -1, "store unavailable"
		} else {
			st.Sessions = n
		}
		out.Apps = append(out.Apps, st)
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

// Interface guard
var _ caddy.AdminRouter = (*AdminAPI)(nil)
