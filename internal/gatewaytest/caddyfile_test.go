package gatewaytest

import "testing"

func TestMockedGatewayCaddyfile(t *testing.T) {
	got := MockedGateway{Admin: 1, Storage: "/data", AppID: "wx1", AppSecret: "s", Mock: 3,
		Sites: []GatewaySite{{Port: 2, Store: "\t\tstore memory\n", Respond: "{http.auth.user.id}"}}}.Caddyfile()
	want := `{
	admin 127.0.0.1:1
	persist_config off
	storage file_system /data
}

http://127.0.0.1:2 {
	wechat_auth {
		app_id wx1
		app_secret s
		api_base http://127.0.0.1:3
		store memory
	}
	respond "{http.auth.user.id}"
}

http://127.0.0.1:3 {
	wechat_mock {
		app_id wx1
		app_secret s
	}
}
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
