package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// decodeBody reads an endpoint's JSON body into v under the handler's
// body_timeout, as decodeJSONBody does. The read deadline is the
// endpoint's own: a client trickling its body (one byte every few
// seconds keeps a plain server waiting forever) is answered 408 and its
// connection closed once body_timeout has passed, so slow clients
// cannot hold logins open by the hundred. A read_timeout of the server
// that ends earlier still ends it.
//
// The deadline is lifted once the body has been read whole, so that it
// bounds nothing after it; when the body was not read whole (an answer
// of 4xx), it is left in place to bound net/http's drain of the rest.
func (h *Handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(time.Duration(h.BodyTimeout))
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.ReadTimeout > 0 {
		if start, ok := caddyhttp.GetVar(r.Context(), "start_time").(time.Time); ok {
			deadline = minTime(deadline, start.Add(time.Duration(srv.ReadTimeout)))
		}
	}
	// A writer that cannot set deadlines (a test recorder) reads
	// without one.
	set := rc.SetReadDeadline(deadline) == nil
	ok := decodeJSONBody(w, r, v)
	if set && ok {
		_ = rc.SetReadDeadline(time.Time{})
	}
	return ok
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

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
		if isTimeout(err) {
			// The connection is of no further use: the rest of the body
			// would take as long again.
			w.Header().Set("Connection", "close")
			_ = writeError(w, http.StatusRequestTimeout, codeRequestTimeout, "the request body was not received in time")
			return false
		}
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

// isTimeout reports a read that ran into its deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
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
