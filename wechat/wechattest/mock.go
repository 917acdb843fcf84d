package wechattest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// The /_mock/ endpoints are not WeChat's. They stand in for the mini
// program in a demo: with them, curl can do what wx.getPhoneNumber does.

const help = `wechattest: a fake WeChat server API. NOT WeChat, not for production.

WeChat endpoints:
  GET  /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
  POST /cgi-bin/stable_token          {"grant_type":"client_credential","appid","secret","force_refresh"}
  POST /wxa/business/getuserphonenumber?access_token=   {"code","openid"}
  GET  /wxa/checksession?access_token=&openid=&signature=&sig_method=hmac_sha256
  GET  /wxa/resetusersessionkey?access_token=&openid=&signature=&sig_method=hmac_sha256

Codes name users: "alice" and "alice:2" are codes of user alice.
Each code works once (40163 after). "" is 41008; a code starting with
"bad" or containing a space is 40029. Every login gives a new session_key.
A phone code posted with the openid of another user is 40003.
signature = hex(hmac_sha256(key = session_key as text, data = "")).

Helpers:
  GET  /_mock/seal_phone?user=alice   -> {"encryptedData","iv"}: alice's phone number,
                                         sealed with her current session_key
  POST /_mock/seal?user=alice  {...}  -> {"encryptedData","iv"}: the JSON object,
                                         plus a watermark, sealed the same way
  (409 if the user has not logged in yet: log in with code "alice" first)
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
	data, iv, err := f.SealPhone(user)
	writeSealed(w, user, data, iv, err)
}

func (f *Fake) serveSeal(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		mockError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST with a JSON object body")
		return
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		mockError(w, http.StatusBadRequest, "invalid_request", "missing ?user=")
		return
	}
	var payload map[string]any
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.UseNumber() // keep numbers exactly as sent
	if err := dec.Decode(&payload); err != nil || payload == nil {
		mockError(w, http.StatusBadRequest, "invalid_request", "body must be a JSON object")
		return
	}
	data, iv, err := f.Seal(user, payload)
	writeSealed(w, user, data, iv, err)
}

func writeSealed(w http.ResponseWriter, user, data, iv string, err error) {
	switch {
	case errors.Is(err, ErrNoSession):
		mockError(w, http.StatusConflict, "no_session", user+" has not logged in: log in with code \""+user+"\" first")
		return
	case err != nil:
		mockError(w, http.StatusBadRequest, "invalid_request", "cannot seal this payload")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"encryptedData": data, "iv": iv})
}

func mockError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}
