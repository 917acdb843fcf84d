package apicall

import (
	"net/http"
	"time"
)

// MaxIdleConnsPerHost is how many idle connections to a platform's API a
// client keeps. Go's default transport keeps 2: under a login storm
// (dozens of code2Session calls in flight at once) every call past the
// second dials anew and closes after, a TCP (and, against the real API,
// TLS) handshake per login. The profile of the storm (bench/storm.sh)
// showed connect and close at a fifth of the gateway's system time.
const MaxIdleConnsPerHost = 64

// idleConnTimeout closes a connection idle that long. A reload makes new
// clients; the idle connections of the old ones close within it.
const idleConnTimeout = 30 * time.Second

// NewHTTPClient returns the HTTP client a platform client uses by
// default: a transport of its own (Go's default one's settings, proxy
// from the environment included, with MaxIdleConnsPerHost idle
// connections kept), and no redirects followed: the platforms never
// redirect, and following one would re-send a POST body, app secret
// included, to wherever the Location header points (307/308).
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = MaxIdleConnsPerHost
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	t.IdleConnTimeout = idleConnTimeout
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
