package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
)

// decodeJSONBody reads the request body into v. On any problem it answers
// the request itself (413, 415 or 400) and returns false; the caller then
// stops. Nothing of the body is echoed back: a decoder's message could
// quote the client's bytes.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength > maxBodyBytes {
		_ = writeError(w, http.StatusRequestEntityTooLarge, codeBodyTooLarge, "the request body is larger than 16 KiB")
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		_ = writeError(w, http.StatusUnsupportedMediaType, codeUnsupportedMedia, "send Content-Type: application/json")
		return false
	}
	// Read one byte more than allowed, so that an over-long body without a
	// Content-Length (chunked) is told apart from one of exactly 16 KiB.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		_ = writeError(w, http.StatusBadRequest, codeInvalidRequest, "could not read the request body")
		return false
	}
	if len(body) > maxBodyBytes {
		_ = writeError(w, http.StatusRequestEntityTooLarge, codeBodyTooLarge, "the request body is larger than 16 KiB")
		return false
	}
	if err := decodeJSON(body, v); err != nil {
		_ = writeError(w, http.StatusBadRequest, codeInvalidRequest, "the body must be one JSON object of the documented shape")
		return false
	}
	return true
}

var errTrailingData = errors.New("trailing data after the JSON value")

// decodeJSON decodes exactly one JSON object. Unknown fields are allowed:
// the mini program forwards whole event details (errMsg, cloudID...).
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Anything but the end of input after the object is trailing data.
	if _, err := dec.Token(); err != io.EOF {
		return errTrailingData
	}
	return nil
}
