package fakeplatform

import (
	"encoding/json"
	"errors"
	"net/http"
)

// The /_mock/ endpoints are not the platform's. They stand in for the
// mini program in a demo, as in wechattest: with them, curl can do what
// getPhoneNumber does.

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
