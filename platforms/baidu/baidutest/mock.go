package baidutest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// The /_mock/ endpoints are not Baidu's. They stand in for the smart
// program in a demo: with them, curl can do what the getPhoneNumber
// button does.

const help = `baidutest: a fake Baidu smart-program server API. NOT Baidu, not for production.

Baidu endpoint:
  POST /oauth/jscode2sessionkey   form code, client_id (App Key), sk (App Secret)

Codes name users: "alice" and "alice:2" are codes of user alice.
Each code works once (invalid_grant after). A code starting with "bad"
or containing a space is invalid_grant. Every login gives a new
24-byte session_key.

Helpers:
  GET  /_mock/seal_phone?user=alice   -> {"encryptedData","iv"}: {"mobile": ...},
                                         sealed with alice's current session_key
  POST /_mock/seal?user=alice  {...}  -> {"encryptedData","iv"}: the JSON object,
                                         sealed the same way, with the App Key
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
	dec.UseNumber()
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
