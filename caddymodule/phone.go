package caddymodule

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// phoneRequest carries any form of the phone button's result: WeChat's
// one-time code (base library 2.21.2 and later, and the real-time
// getRealtimePhoneNumber component), the legacy sealed payload, or
// Alipay's signed my.getPhoneNumber payload.
type phoneRequest struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	Response      string `json:"response"`
	Sign          string `json:"sign"`
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
		info     platform.Phone
		form     string
		keyField = zap.Skip()
	)
	sealer, sealed := h.api().(platform.Sealer)
	signer, signed := h.api().(platform.SignedPhoner)
	switch {
	case req.Code != "":
		if h.client == nil {
			return writeError(w, http.StatusBadRequest, codeInvalidRequest, `"code" is WeChat's getPhoneNumber form, not served on `+h.info.Title+": "+h.phoneForms())
		}
		if !validCode(req.Code) {
			return writeError(w, http.StatusBadRequest, codeInvalidRequest, `"code" must be the code of getPhoneNumber`)
		}
		// The code goes to WeChat with the caller's openid, from the
		// token: WeChat then refuses a code made for another user (403
		// code_not_for_user), and the client refuses an answer
		// watermarked for another app (400 watermark_mismatch). Either
		// way nothing is bound.
		form = "code"
		wi, err := h.client.PhoneNumber(r.Context(), req.Code, sess.User.OpenID)
		if err != nil {
			f := classifyPhoneCodeError(err)
			h.logger.Warn("phone binding failed", openid, zap.String("form", form),
				zap.String("result", f.code), errcodeField(err), errorField(err))
			return f.write(w)
		}
		info = platform.Phone{PhoneNumber: wi.PhoneNumber, PurePhoneNumber: wi.PurePhoneNumber, CountryCode: wi.CountryCode}
	case sealed && req.EncryptedData != "" && req.IV != "":
		form = "encrypted"
		var (
			key string
			err error
		)
		info, key, err = openSealed(r.Context(), h, sess.User.OpenID, sess.User.SessionKey, func(sessionKey string) (platform.Phone, error) {
			return sealer.OpenPhone(sessionKey, req.EncryptedData, req.IV)
		})
		if err != nil {
			return h.sealedFailed(w, "phone", err, openid, zap.String("form", form))
		}
		h.metrics.decryptions.WithLabelValues("phone", key).Inc()
		keyField = zap.String("key", key)
	case signed && req.Response != "":
		form = "signed"
		var err error
		if info, err = signer.OpenSignedPhone(req.Response, req.Sign); err != nil {
			return h.sealedFailed(w, "phone", err, openid, zap.String("form", form))
		}
		h.metrics.decryptions.WithLabelValues("phone", "signed").Inc()
	default:
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, h.phoneForms())
	}
	if info.PurePhoneNumber == "" {
		return writeError(w, http.StatusBadGateway, codeWeChatError, h.info.Title+" returned no phone number")
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
	return writeJSON(w, http.StatusOK, phoneResponse(info))
}

// phoneForms says which forms /phone takes on this handler's platform.
func (h *Handler) phoneForms() string {
	var forms []string
	if h.client != nil {
		forms = append(forms, `{"code"}`)
	}
	if _, ok := h.api().(platform.Sealer); ok {
		forms = append(forms, `{"encryptedData", "iv"}`)
	}
	if _, ok := h.api().(platform.SignedPhoner); ok {
		forms = append(forms, `{"response", "sign"}`)
	}
	if len(forms) == 0 {
		return h.info.Title + " has no phone number form here"
	}
	msg := "send " + forms[0]
	for i, f := range forms[1:] {
		if i == len(forms)-2 {
			msg += " or " + f
		} else {
			msg += ", " + f
		}
	}
	return msg + " from getPhoneNumber"
}
