package alipaytest

import (
	"io"
	"net/http"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
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

func (f *Fake) serveSealPhone(w http.ResponseWriter, r *http.Request) {
	user, ok := fakeplatform.MockUser(w, r, http.MethodGet, "use GET")
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, f.PhonePayload(user)+"\n")
}

func (f *Fake) servePublicKey(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		fakeplatform.MockError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(f.AlipayPublicKeyPEM())
}
