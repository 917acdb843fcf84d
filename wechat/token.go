package wechat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// TokenSource supplies access tokens, in the manner of
// golang.org/x/oauth2.TokenSource but with a context.
type TokenSource interface {
	// Token returns a token that was valid when it was fetched and is
	// not close to expiry, fetching a new one if needed.
	Token(ctx context.Context) (*Token, error)
}

// Token is a WeChat access token. AccessToken is a secret: String,
// GoString and Format redact it.
type Token struct {
	// AccessToken is the token itself, for the access_token query
	// parameter of WeChat's APIs.
	AccessToken string
	// Expiry is when WeChat said the token expires, measured from just
	// before the request that fetched it.
	Expiry time.Time
}

// String describes t with its AccessToken redacted.
func (t Token) String() string {
	return fmt.Sprintf("wechat.Token{AccessToken: [redacted], Expiry: %s}", t.Expiry.Format(time.RFC3339))
}

// GoString is String, so that %#v redacts too.
func (t Token) GoString() string { return t.String() }

// Format prints String for every verb.
func (t Token) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// maxTokenTTL bounds expires_in: a hostile or broken answer must not make
// a token live forever (or overflow time.Duration).
const maxTokenTTL = 24 * time.Hour

// refreshSkew is how long before expiry a cached token is replaced: a
// minute, or a quarter of its life for short-lived tokens, so that a token
// is never sent in its last seconds.
func refreshSkew(ttl time.Duration) time.Duration {
	return min(time.Minute, ttl/4)
}

// tokenSource caches the access token of one Client.
//
// The token comes from stable_token, which gives every instance of the app
// the same token (unlike the old /cgi-bin/token, which invalidated the
// previous one on each call): several gateways can each run one of these.
type tokenSource struct {
	c     *Client
	group singleflight.Group

	mu        sync.Mutex
	tok       *Token
	refreshAt time.Time
	dead      string // the last token WeChat rejected
}

// Token implements TokenSource.
func (ts *tokenSource) Token(ctx context.Context) (*Token, error) {
	if t := ts.cached(); t != nil {
		return t, nil
	}
	ctx, cancel := ts.c.withTimeout(ctx)
	defer cancel()
	return ts.fetch(ctx, "")
}

// cached returns a copy of the cached token if it is still fresh.
func (ts *tokenSource) cached() *Token {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tok == nil || !ts.c.now().Before(ts.refreshAt) {
		return nil
	}
	t := *ts.tok
	return &t
}

// refreshAfter is called when WeChat rejected dead (40001, 40014, 42001).
// It returns a different token: the cached one if another caller already
// replaced dead, else a newly fetched one.
func (ts *tokenSource) refreshAfter(ctx context.Context, dead string) (*Token, error) {
	ts.mu.Lock()
	ts.dead = dead
	if ts.tok != nil && ts.tok.AccessToken == dead {
		ts.tok = nil
	}
	ts.mu.Unlock()
	if t := ts.cached(); t != nil {
		return t, nil
	}
	return ts.fetch(ctx, dead)
}

// fetch gets a token with a plain stable_token call, and only if that hands
// back dead again, with force_refresh: WeChat allows 20 forced refreshes a
// day, and a forced refresh invalidates the token every other instance of
// the app is using.
func (ts *tokenSource) fetch(ctx context.Context, dead string) (*Token, error) {
	t, err := ts.flight(ctx, false)
	if err != nil {
		return nil, err
	}
	if dead != "" && t.AccessToken == dead {
		return ts.flight(ctx, true)
	}
	return t, nil
}

// flight runs one stable_token call shared by every concurrent caller
// (singleflight). The call runs on a context detached from the first
// caller's cancellation, bounded by the client timeout, so that one
// impatient caller cannot fail everyone waiting; each caller still stops
// waiting when its own context ends.
func (ts *tokenSource) flight(ctx context.Context, force bool) (*Token, error) {
	key := "plain"
	if force {
		key = "force"
	}
	ch := ts.group.DoChan(key, func() (any, error) {
		if !force {
			// A flight that finished just before this one began
			// may have filled the cache already.
			if t := ts.cached(); t != nil {
				return t, nil
			}
		}
		fctx, cancel := ts.c.withTimeout(context.WithoutCancel(ctx))
		defer cancel()
		return ts.stableToken(fctx, force)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		t := *r.Val.(*Token)
		return &t, nil
	case <-ctx.Done():
		return nil, ctxError(APIStableToken, ctx)
	}
}

type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

type stableTokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// stableToken calls POST /cgi-bin/stable_token and caches the answer.
func (ts *tokenSource) stableToken(ctx context.Context, force bool) (*Token, error) {
	c := ts.c
	// The secret travels in the body, not the URL, for this API.
	body, err := json.Marshal(stableTokenRequest{
		GrantType:    "client_credential",
		AppID:        c.appID,
		Secret:       c.secret,
		ForceRefresh: force,
	})
	if err != nil {
		return nil, newError(APIStableToken, ErrInvalidInput, "cannot encode request")
	}
	start := c.now()
	var r stableTokenResponse
	err = c.do(ctx, request{
		api:    APIStableToken,
		method: http.MethodPost,
		path:   "/cgi-bin/stable_token",
		body:   body,
		redact: c.redactor(),
	}, &r)
	if err != nil {
		return nil, err
	}
	if r.AccessToken == "" || r.ExpiresIn <= 0 {
		return nil, newError(APIStableToken, ErrBadResponse, "answer has no access_token or expires_in")
	}
	ttl := time.Duration(min(r.ExpiresIn, int64(maxTokenTTL/time.Second))) * time.Second
	t := &Token{AccessToken: r.AccessToken, Expiry: start.Add(ttl)}

	ts.mu.Lock()
	// A plain refresh that returns the token just rejected must not be
	// cached: fetch follows it with a forced refresh.
	if force || t.AccessToken != ts.dead {
		ts.tok = t
		ts.refreshAt = t.Expiry.Add(-refreshSkew(ttl))
	}
	ts.mu.Unlock()
	return t, nil
}

// withToken runs call with the cached access token and, if WeChat
// rejects that token (IsInvalidToken: 40001, 40014, 42001), once more
// with a fresh one. Every token-bearing API goes through it, so all share
// one refresh rule: one refresh per call, force_refresh only when a plain
// refresh hands the rejected token back.
func (c *Client) withToken(ctx context.Context, call func(token string) error) error {
	tok, err := c.ts.Token(ctx)
	if err != nil {
		return err
	}
	err = call(tok.AccessToken)
	if IsInvalidToken(err) {
		if tok, err = c.ts.refreshAfter(ctx, tok.AccessToken); err != nil {
			return err
		}
		err = call(tok.AccessToken)
	}
	return err
}
