package caddymodule

import (
	"encoding/json"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

type decryptRequest struct {
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
}

// serveDecrypt opens any open data (userInfo, WeRun, share info) sealed
// with the caller's session key, after the watermark check.
func (h *Handler) serveDecrypt(w http.ResponseWriter, r *http.Request, _ store.TokenHash, sess store.Session) error {
	sealer, ok := h.api().(platform.Sealer)
	if !ok {
		return h.noSealedData(w, h.paths.decrypt+" does not apply")
	}
	var req decryptRequest
	if !h.decodeBody(w, r, &req) {
		return nil
	}
	if req.EncryptedData == "" || req.IV == "" {
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, `send {"encryptedData", "iv"}`)
	}
	openid := zap.String("openid", sess.User.OpenID)
	raw, key, err := openSealed(r.Context(), h, sess.User.OpenID, sess.User.SessionKey, func(sessionKey string) (json.RawMessage, error) {
		return sealer.OpenSealed(sessionKey, req.EncryptedData, req.IV)
	})
	if err != nil {
		return h.sealedFailed(w, "decrypt", err, openid)
	}
	// The watermark proves the data was sealed for this app; an openId in
	// it must also be the caller's, or one user could have another user's
	// data (sealed under a key they once held) read back as their own. An
	// openId that is not even a string is not the caller's either.
	var owner struct {
		OpenID json.RawMessage `json:"openId"`
	}
	if err := json.Unmarshal(raw, &owner); err != nil {
		return writeError(w, http.StatusBadRequest, codeDecryptFailed, "the decrypted data is not a JSON object")
	}
	if owner.OpenID != nil {
		var id string
		if json.Unmarshal(owner.OpenID, &id) != nil || id != sess.User.OpenID {
			h.metrics.decryptions.WithLabelValues("decrypt", codeWatermarkMismatch).Inc()
			h.logger.Warn("decrypted data names another user", openid)
			return writeError(w, http.StatusBadRequest, codeWatermarkMismatch, "the data belongs to another user")
		}
	}
	h.metrics.decryptions.WithLabelValues("decrypt", key).Inc()
	h.logger.Info("decrypted", openid, zap.String("key", key))
	return writeJSONBody(w, http.StatusOK, raw)
}
