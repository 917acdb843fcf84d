package gatewaytest

import (
	"fmt"
	"strings"
)

// MockedGateway is the Caddyfile of a gateway whose WeChat is a
// wechat_mock site of the same Caddy: an admin endpoint, storage of its
// own, wechat_auth sites of one app, and the mock, all on 127.0.0.1.
type MockedGateway struct {
	// Admin is the admin endpoint's port.
	Admin int
	// Storage is the directory of Caddy's file_system storage.
	Storage string
	// AppID and AppSecret are the app's, on the gateway and the mock.
	AppID, AppSecret string
	// Mock is the wechat_mock site's port.
	Mock int
	// Sites are the wechat_auth sites.
	Sites []GatewaySite
}

// GatewaySite is a wechat_auth site of a MockedGateway.
type GatewaySite struct {
	// Port is the site's port.
	Port int
	// Store is put inside the wechat_auth block as it is: whole lines,
	// indented by two tabs, each ending in a newline ("": the default
	// store).
	Store string
	// Respond is what the site answers a request wechat_auth lets
	// through, placeholders and all.
	Respond string
}

// Caddyfile is the configuration.
func (m MockedGateway) Caddyfile() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tstorage file_system %s\n}\n", m.Admin, m.Storage)
	for _, s := range m.Sites {
		fmt.Fprintf(&b, "\nhttp://127.0.0.1:%d {\n\twechat_auth {\n\t\tapp_id %s\n\t\tapp_secret %s\n\t\tapi_base http://127.0.0.1:%d\n%s\t}\n\trespond \"%s\"\n}\n",
			s.Port, m.AppID, m.AppSecret, m.Mock, s.Store, s.Respond)
	}
	fmt.Fprintf(&b, "\nhttp://127.0.0.1:%d {\n\twechat_mock {\n\t\tapp_id %s\n\t\tapp_secret %s\n\t}\n}\n", m.Mock, m.AppID, m.AppSecret)
	return b.String()
}
