package platformtest

import (
	"fmt"
	"io"
	"net/http"
)

// LeakyTransport fails every request with an error quoting its whole URL
// and up to 4 KiB of its body: what a careless transport could put in an
// error, for the checks that no secret gets through.
type LeakyTransport struct{}

// RoundTrip fails, quoting r.
func (LeakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var b []byte
	if r.Body != nil {
		b, _ = io.ReadAll(io.LimitReader(r.Body, 4096))
	}
	return nil, fmt.Errorf("cannot reach %s with %q", r.URL, b)
}

// Interface guards.
var _ http.RoundTripper = LeakyTransport{}
