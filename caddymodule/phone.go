package caddymodule

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// phoneRequest carries either form of getPhoneNumber's result: the
// one-time code (base library 2.21.2 and later, and the real-time
// getRealtimePhoneNumber component) or the legacy sealed payload.
type phoneRequest struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
}

type phoneResponse struct {
	PhoneNumber     string `json:"phoneNumber"`
	PurePhoneNumber string `json:"purePhoneNumber"`
	CountryCode     string `json:"countryCode"`
}

// servePhone exchanges or decrypts a phone number and binds it to the
// caller, so it is forwarded upstream from then on.
func (h *Handler) servePhone(w http.ResponseWriter, r *http.Request, _ store.TokenHash, sess store.Session) error {
	var req phoneRequest
	if !h.decodeBody(w, r, &req) {
		return nil
	}
	openid := zap.String("openid", sess.User.OpenID)
	var (
		info     *wechat.PhoneInfo
		form     string
		keyField = zap.Skip()
	)
	switch {
	case req.Code != "":
		if !validCode(req.Code) {
			return writeError(w, http.StatusBadRequest, codeInvalidRequest, `"code" must be the code of getPhoneNumber`)
		}
		// The code form names no user: WeChat issued the code to whoever
		// tapped the button in this mini program, and the caller's token
		// says who that is.
		form = "code"
		var err error
		if info, err = h.client.PhoneNumber(r.Context(), req.Code, sess.User.OpenID); err != nil {
			f := classifyPhoneCodeError(err)
			h.logger.Warn("phone binding failed", openid, zap.String("form", form),
				zap.String("result", f.code), errcodeField(err), errorField(err))
			return f.write(w)
		}
	case req.EncryptedData != "" && req.IV != "":
		form = "encrypted"
		var (
			key string
			err error
		)
		info, key, err = openSealed(r.Context(), h, sess.User.OpenID, sess.User.SessionKey, func(sessionKey string) (*wechat.PhoneInfo, error) {
			return h.client.DecryptPhone(sessionKey, req.EncryptedData, req.IV)
		})
		if err != nil {
			return h.sealedFailed(w, "phone", err, openid, zap.String("form", form))
		}
		h.metrics.decryptions.WithLabelValues("phone", key).Inc()
		keyField = zap.String("key", key)
	default:
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, `send {"code"} or {"encryptedData", "iv"} from getPhoneNumber`)
	}
	if info.PurePhoneNumber == "" {
		return writeError(w, http.StatusBadGateway, codeWeChatError, "WeChat returned no phone number")
	}

	err := h.store.BindPhone(r.Context(), sess.User.OpenID, info.PurePhoneNumber, info.CountryCode)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Logged out or revoked since the token was checked.
		return h.unauthenticated(w, true)
	case err != nil:
		return h.storeFailed(w, "bind_phone", err, openid, zap.String("form", form))
	}
	h.logger.Info("phone bound", openid,
		zap.String("form", form),
		keyField,
		zap.String("result", "ok"),
		zap.String("phone", wechat.MaskPhone(info.PurePhoneNumber)),
		zap.String("country_code", info.CountryCode))
	return writeJSON(w, http.StatusOK, phoneResponse{
		PhoneNumber:     info.PhoneNumber,
		PurePhoneNumber: info.PurePhoneNumber,
		CountryCode:     info.CountryCode,
	})
}
