package fakeplatform

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// The /_mock/ endpoints are not the platform's. They stand in for the
// mini program in a demo, as in wechattest: with them, curl can do what
// getPhoneNumber does. The functions below serve them for every fake.

// Sealer is a fake that seals open data for its users.
type Sealer interface {
	Seal(user string, payload map[string]any) (encryptedData, iv string, err error)
	SealPhone(user string) (encryptedData, iv string, err error)
}

func (f *Fake) serveSealPhone(w http.ResponseWriter, r *http.Request) {
	ServeSealPhone(w, r, f, ErrNoSession)
}

func (f *Fake) serveSeal(w http.ResponseWriter, r *http.Request) { ServeSeal(w, r, f, ErrNoSession) }

// ServeSealPhone serves GET /_mock/seal_phone?user=: s's SealPhone, as
// {"encryptedData", "iv"}; 409 for an error that is noSession (the
// fake's ErrNoSession).
func ServeSealPhone(w http.ResponseWriter, r *http.Request, s Sealer, noSession error) {
	user, ok := MockUser(w, r, http.MethodGet, "use GET")
	if !ok {
		return
	}
	data, iv, err := s.SealPhone(user)
	writeSealed(w, user, data, iv, err, noSession)
}

// ServeSeal serves POST /_mock/seal?user= with a JSON object body: s's
// Seal of it, as ServeSealPhone.
func ServeSeal(w http.ResponseWriter, r *http.Request, s Sealer, noSession error) {
	user, ok := MockUser(w, r, http.MethodPost, "use POST with a JSON object body")
	if !ok {
		return
	}
	var payload map[string]any
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.UseNumber() // keep numbers exactly as sent
	if err := dec.Decode(&payload); err != nil || payload == nil {
		MockError(w, http.StatusBadRequest, "invalid_request", "body must be a JSON object")
		return
	}
	data, iv, err := s.Seal(user, payload)
	writeSealed(w, user, data, iv, err, noSession)
}

// MockUser checks that r uses method (else 405 with hint) and names a
// ?user= (else 400), and returns the user.
func MockUser(w http.ResponseWriter, r *http.Request, method, hint string) (string, bool) {
	if r.Method != method {
		MockError(w, http.StatusMethodNotAllowed, "method_not_allowed", hint)
		return "", false
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		MockError(w, http.StatusBadRequest, "invalid_request", "missing ?user=")
		return "", false
	}
	return user, true
}

// ServeHelp serves help as plain text to GET and HEAD, 405 otherwise.
func ServeHelp(w http.ResponseWriter, r *http.Request, help string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		MockError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, help)
}

func writeSealed(w http.ResponseWriter, user, data, iv string, err, noSession error) {
	switch {
	case errors.Is(err, noSession):
		MockError(w, http.StatusConflict, "no_session", user+" has not logged in: log in with code \""+user+"\" first")
		return
	case err != nil:
		MockError(w, http.StatusBadRequest, "invalid_request", "cannot seal this payload")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"encryptedData": data, "iv": iv})
}

// MockError answers a /_mock/ request with {"error", "message"}.
func MockError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}
