package wechat

import (
	"os"
	"strings"
	"testing"
)

func katInputs(b *testing.B) (key, data, iv string) {
	raw, err := os.ReadFile("testdata/kat/phone.enc.b64")
	if err != nil {
		b.Fatal(err)
	}
	return "AAECAwQFBgcICQoLDA0ODw==", strings.TrimSpace(string(raw)), "8OHSw7Sllod4aVpLPC0eDw=="
}

func BenchmarkDecrypt(b *testing.B) {
	c := NewClient(fuzzAppID, "secret")
	key, data, iv := katInputs(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decrypt(key, data, iv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptPhone(b *testing.B) {
	c := NewClient(fuzzAppID, "secret")
	key, data, iv := katInputs(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DecryptPhone(key, data, iv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptBadPadding(b *testing.B) {
	c := NewClient(fuzzAppID, "secret")
	key, data, iv := katInputs(b)
	key = "AQECAwQFBgcICQoLDA0ODw==" // wrong key: garbage plaintext
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decrypt(key, data, iv); err == nil {
			b.Fatal("no error")
		}
	}
}

func BenchmarkDecodeCode2Session(b *testing.B) {
	body := []byte(`{"session_key":"AAECAwQFBgcICQoLDA0ODw==","openid":"oAbCdEfGhIjKlMnOpQrStUvWxYz0","unionid":"oUnIoNaBcDeFgHiJkLmNoPqRsTuV"}`)
	red := NewClient(fuzzAppID, "secret0123456789").redactor()
	b.ReportAllocs()
	for b.Loop() {
		var r code2SessionResponse
		if err := decodeResponse(APICode2Session, 200, "text/plain", body, &r, red); err != nil {
			b.Fatal(err)
		}
		if err := r.validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePhoneNumber(b *testing.B) {
	body := []byte(`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800001111","purePhoneNumber":"13800001111","countryCode":86,"watermark":{"timestamp":1700000000,"appid":"wx0123456789abcdef"}}}`)
	red := NewClient(fuzzAppID, "secret0123456789").redactor("token0123456789")
	b.ReportAllocs()
	for b.Loop() {
		var r phoneNumberResponse
		if err := decodeResponse(APIPhoneNumber, 200, "application/json", body, &r, red); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeError(b *testing.B) {
	body := []byte(`{"errcode":40029,"errmsg":"invalid code, rid: 65a1b2c3-1c2d3e4f-5a6b7c8d"}`)
	red := NewClient(fuzzAppID, "secret0123456789").redactor()
	b.ReportAllocs()
	for b.Loop() {
		var r code2SessionResponse
		if err := decodeResponse(APICode2Session, 200, "text/plain", body, &r, red); err == nil {
			b.Fatal("no error")
		}
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	raw := `{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}`
	b.ReportAllocs()
	for b.Loop() {
		VerifySignature(raw, "HyVFkGl5F5OQWJZZaNzBBg==", "880cdb5994cb662931a46726252ab9d8942768db")
	}
}
