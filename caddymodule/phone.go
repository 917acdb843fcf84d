package caddymodule

import (
	"encoding/json"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// phoneRequest carries either form of getPhoneNumber's result: the
// one-time code (base library 2.21.2 and later) or the legacy sealed
// payload.
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
func (h *Handler) servePhone(w http.ResponseWriter, r *http.Request, _ TokenHash, sess Session) error {
	var req phoneRequest
	if !decodeJSONBody(w, r, &req) {
		return nil
	}
	var (
		phoneNumber, purePhone, countryCode string
		form                                string
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
		info, err := h.client.PhoneNumber(r.Context(), req.Code)
		if err != nil {
			return h.phoneFailure(w, sess.User.OpenID, form, err)
		}
		phoneNumber, purePhone, countryCode = info.PhoneNumber, info.PurePhoneNumber, info.CountryCode
	case req.EncryptedData != "" && req.IV != "":
		form = "encrypted"
		info, err := h.client.DecryptPhone(sess.User.SessionKey, req.EncryptedData, req.IV)
		if err != nil {
			return h.phoneFailure(w, sess.User.OpenID, form, err)
		}
		phoneNumber, purePhone, countryCode = info.PhoneNumber, info.PurePhoneNumber, info.CountryCode
	default:
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, `send {"code"} or {"encryptedData", "iv"} from getPhoneNumber`)
	}
	if purePhone == "" {
		return writeError(w, http.StatusBadGateway, codeWeChatError, "WeChat returned no phone number")
	}

	if err := h.store.BindPhone(r.Context(), sess.User.OpenID, purePhone, countryCode); err != nil {
		h.logger.Error("phone binding failed",
			zap.String("openid", sess.User.OpenID),
			zap.String("form", form),
			zap.String("result", codeStoreUnavailable),
			zap.Error(err))
		return writeStoreError(w)
	}
	h.logger.Info("phone bound",
		zap.String("openid", sess.User.OpenID),
		zap.String("form", form),
		zap.String("result", "ok"),
		zap.String("phone", wechat.MaskPhone(purePhone)),
		zap.String("country_code", countryCode))
	return writeJSON(w, http.StatusOK, phoneResponse{
		PhoneNumber:     phoneNumber,
		PurePhoneNumber: purePhone,
		CountryCode:     countryCode,
	})
}

// phoneFailure logs the one line of a failed phone binding and answers
// it. The error comes from the wechat package, which keeps secrets out of
// it.
func (h *Handler) phoneFailure(w http.ResponseWriter, openid, form string, err error) error {
	f := classifyWeChatError(err)
	h.logger.Warn("phone binding failed",
		zap.String("openid", openid),
		zap.String("form", form),
		zap.String("result", f.code),
		errcodeField(err),
		zap.Error(err))
	return f.write(w)
}

type decryptRequest struct {
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
}

// serveDecrypt opens any open data (userInfo, WeRun, share info) sealed
// with the caller's session key.
func (h *Handler) serveDecrypt(w http.ResponseWriter, r *http.Request, _ TokenHash, sess Session) error {
	var req decryptRequest
	if !decodeJSONBody(w, r, &req) {
		return nil
	}
	if req.EncryptedData == "" || req.IV == "" {
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, `send {"encryptedData", "iv"}`)
	}
	raw, err := h.client.Decrypt(sess.User.SessionKey, req.EncryptedData, req.IV)
	if err != nil {
		return classifyWeChatError(err).write(w)
	}
	// The watermark proves the data was sealed for this app; an openId in
	// it must also be the caller's, or one user could have another user's
	// data (sealed under a key they once held) read back as their own.
	var owner struct {
		OpenID *string `json:"openId"`
	}
	if err := json.Unmarshal(raw, &owner); err != nil {
		return writeError(w, http.StatusBadRequest, codeDecryptFailed, "the decrypted data is not a JSON object")
	}
	if owner.OpenID != nil && *owner.OpenID != sess.User.OpenID {
		h.logger.Warn("decrypted data names another user", zap.String("openid", sess.User.OpenID))
		return writeError(w, http.StatusBadRequest, codeWatermarkMismatch, "the data belongs to another user")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
	return nil
}
