package caddymodule

import (
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	// The stores every build has: memory is the default.
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/memorystore"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/redisstore"
)

// openStore loads the store module (memory by default), opens the app's
// store, and registers it for the admin API until Cleanup.
func (h *Handler) openStore(ctx caddy.Context) error {
	if h.StoreRaw == nil {
		h.StoreRaw = json.RawMessage(`{"backend":"memory"}`)
	}
	mod, err := ctx.LoadModule(h, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading session store: %v", err)
	}
	sm, ok := mod.(store.Module)
	if !ok {
		return fmt.Errorf("module %T is not a session store", mod)
	}
	if h.store, err = sm.Open(ctx, h.appID); err != nil {
		return fmt.Errorf("opening session store: %v", err)
	}
	h.metrics.watchSessions(h.store)
	h.releaseStore = store.Register(h.appID, sm.CaddyModule().ID.Name(), h.store)
	return nil
}
