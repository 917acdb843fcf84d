package memorystore

import (
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

func TestPackedUserRoundTrip(t *testing.T) {
	for _, u := range []store.User{
		{OpenID: "o-only"},
		{OpenID: "oAbC", SessionKey: "c2Vzc2lvbmtleTFzZXNzaQ=="},
		{OpenID: "oAbC", SessionKey: "k", UnionID: "u", Phone: "13800001111", CountryCode: "86"},
		{OpenID: "oAbC", Phone: "13800001111"},
		{OpenID: "é", CountryCode: "1"},
	} {
		p, err := packUser(u)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.user(); got != u {
			t.Errorf("packUser(%+v).user() = %+v", u, got)
		}
		if p.openID() != u.OpenID {
			t.Errorf("openID() = %q, want %q", p.openID(), u.OpenID)
		}
	}
	for _, u := range []store.User{
		{OpenID: strings.Repeat("o", maxField+1)},
		{OpenID: "o", CountryCode: strings.Repeat("8", maxField+1)},
	} {
		if _, err := packUser(u); err == nil {
			t.Fatal("an oversized field was packed")
		}
	}
	if _, err := packUser(store.User{OpenID: strings.Repeat("o", maxField), CountryCode: strings.Repeat("8", maxField)}); err != nil {
		t.Fatal(err)
	}
}
