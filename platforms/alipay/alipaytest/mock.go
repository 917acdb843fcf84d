package alipaytest

import (
	"encoding/json"
	"io"
	"net/http"
)

// The /_mock/ endpoints are not Alipay's. They stand in for the mini
// program in a demo: with them, curl can do what my.getPhoneNumber does.

const help = `alipaytest: a fake Alipay open-platform gateway. NOT Alipay, not for production.

Alipay endpoint:
  POST /gateway.do   method=alipay.system.oauth.token, grant_type=authorization_code, code,
                     the common parameters, sign (RSA2 with the app's private key)

Codes name users: "alice" and "alice:2" are codes of user alice.
Each code works once (40002 isv.code-invalid after). A code starting
with "bad" or containing a space is isv.code-invalid too.

Helpers:
  GET /_mock/seal_phone?user=alice   -> {"response","sign","sign_type","encrypt_type","charset"}:
                                        what my.getPhoneNumber gives the mini program
  GET /_mock/alipay_public_key       -> the fake Alipay's public key (PEM)
`

func serveHelp(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		mockError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, help)
}

func (f *Fake) serveSealPhone(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		mockError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		mockError(w, http.StatusBadRequest, "invalid_request", "missing ?user=")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, f.PhonePayload(user)+"\n")
}

func (f *Fake) servePublicKey(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		mockError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(f.AlipayPublicKeyPEM())
}

func mockError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}
