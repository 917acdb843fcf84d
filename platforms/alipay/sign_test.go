package alipay_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
)

// opensslKeys makes a 2048-bit key with openssl and returns the parsed
// private and public keys, and the directory holding key.pem (PKCS#8)
// and pub.pem (PKIX).
func opensslKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PublicKey, string) {
	t.Helper()
	dir := t.TempDir()
	openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "key.pem")
	openssl(t, dir, "pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")
	priv, err := alipay.ParsePrivateKeyPEM(read(t, dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := alipay.ParsePublicKeyPEM(read(t, dir, "pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub, dir
}

// TestSignContentAndSign: the request's signed string is built by the
// rule (sorted, non-empty, sign left out, raw values), and its sign is
// byte for byte what openssl makes (PKCS#1 v1.5 is deterministic); openssl
// verifies ours.
func TestSignContentAndSign(t *testing.T) {
	priv, _, dir := opensslKeys(t)
	params := url.Values{
		"app_id": {appID}, "method": {"alipay.system.oauth.token"}, "format": {"JSON"},
		"charset": {"utf-8"}, "sign_type": {"RSA2"}, "timestamp": {"2026-12-02 14:03:05"},
		"version": {"1.0"}, "grant_type": {"authorization_code"}, "code": {"4b20=c&d+e"},
		"app_auth_token": {""}, "sign": {"ignored"},
	}
	content := alipay.SignContent(params)
	want := "app_id=2021000000000000&charset=utf-8&code=4b20=c&d+e&format=JSON&grant_type=authorization_code" +
		"&method=alipay.system.oauth.token&sign_type=RSA2&timestamp=2026-12-02 14:03:05&version=1.0"
	if content != want {
		t.Fatalf("SignContent =\n%s\nwant\n%s", content, want)
	}
	write(t, dir, "content.txt", []byte(content))
	openssl(t, dir, "dgst", "-sha256", "-sign", "key.pem", "-out", "sig.bin", "content.txt")
	ours, err := alipay.Sign(priv, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	if theirs := base64.StdEncoding.EncodeToString(read(t, dir, "sig.bin")); ours != theirs {
		t.Fatalf("Sign differs from openssl:\n%s\n%s", ours, theirs)
	}
	raw, _ := base64.StdEncoding.DecodeString(ours)
	write(t, dir, "ours.bin", raw)
	if out := openssl(t, dir, "dgst", "-sha256", "-verify", "pub.pem", "-signature", "ours.bin", "content.txt"); !bytes.Contains(out, []byte("Verified OK")) {
		t.Fatalf("openssl: %s", out)
	}
}

// TestVerifyExactBytes: a sign made by openssl over an inner object with
// spacing, key order and escapes of its own verifies over those bytes as
// they stand in the body, and not over any re-encoding of them; a
// tampered byte is refused.
func TestVerifyExactBytes(t *testing.T) {
	_, pub, dir := opensslKeys(t)
	inner := `{"open_id" : "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5", "access_token":"authusrB0123",` +
		`"expires_in":1296000 ,"sub_msg":"\u6388\u6743\/ok","re_expires_in":2592000}`
	write(t, dir, "inner.json", []byte(inner))
	openssl(t, dir, "dgst", "-sha256", "-sign", "key.pem", "-out", "sig.bin", "inner.json")
	sign := base64.StdEncoding.EncodeToString(read(t, dir, "sig.bin"))
	if err := alipay.Verify(pub, []byte(inner), sign); err != nil {
		t.Fatalf("exact bytes: %v", err)
	}

	// The body as Alipay writes it, read by the client's decoder.
	body := "{\"alipay_system_oauth_token_response\":" + inner + ",\n \"sign\" : \"" + sign + "\"}"
	raw, err := alipay.SignedPart([]byte(body), "alipay.system.oauth.token", pub)
	if err != nil || string(raw) != inner {
		t.Fatalf("SignedPart = %s, %v", raw, err)
	}

	// Every re-encoding changes the bytes, and fails.
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(inner))
	var m map[string]any
	_ = json.Unmarshal([]byte(inner), &m)
	remarshaled, _ := json.Marshal(m)
	for name, re := range map[string][]byte{"compact": compact.Bytes(), "re-marshaled": remarshaled} {
		if bytes.Equal(re, []byte(inner)) {
			t.Fatalf("%s: the vector does not exercise re-encoding", name)
		}
		if err := alipay.Verify(pub, re, sign); !errors.Is(err, alipay.ErrSignature) {
			t.Errorf("%s verified: %v", name, err)
		}
	}
	// One tampered byte, anywhere in the signed object.
	for i := range inner {
		tampered := []byte(inner)
		tampered[i] ^= 0x01
		if err := alipay.Verify(pub, tampered, sign); !errors.Is(err, alipay.ErrSignature) {
			t.Fatalf("byte %d tampered, verified", i)
		}
	}
	tb := strings.Replace(body, "1296000", "9296000", 1)
	if _, err := alipay.SignedPart([]byte(tb), "alipay.system.oauth.token", pub); !errors.Is(err, alipay.ErrSignature) || !errors.Is(err, alipay.ErrBadResponse) {
		t.Errorf("tampered body: %v", err)
	}
}

// TestDecryptPhoneOpenSSL seals a phone payload with openssl (AES-128-CBC,
// zero IV, PKCS#7) and signs "\"" + response + "\"" with openssl.
func TestDecryptPhoneOpenSSL(t *testing.T) {
	_, pub, dir := opensslKeys(t)
	aesKey := bytes.Repeat([]byte{0x5a}, 16)
	write(t, dir, "plain.json", []byte(`{"code":"10000","msg":"Success","mobile":"15976719050"}`))
	ct := openssl(t, dir, "enc", "-aes-128-cbc", "-K", hex.EncodeToString(aesKey), "-iv", strings.Repeat("00", 16), "-in", "plain.json")
	response := base64.StdEncoding.EncodeToString(ct)
	write(t, dir, "quoted.txt", []byte(`"`+response+`"`))
	openssl(t, dir, "dgst", "-sha256", "-sign", "key.pem", "-out", "sig.bin", "quoted.txt")
	sign := base64.StdEncoding.EncodeToString(read(t, dir, "sig.bin"))

	c := alipay.NewClient(appID, appKey(), pub, alipay.WithAESKey(aesKey))
	p, err := c.DecryptPhone(response, sign)
	if err != nil || p.PurePhoneNumber != "15976719050" || p.PhoneNumber != "15976719050" || p.CountryCode != "" {
		t.Fatalf("DecryptPhone = %+v, %v", p, err)
	}
	// A sign over the bare string (no quotes) is not Alipay's rule.
	write(t, dir, "bare.txt", []byte(response))
	openssl(t, dir, "dgst", "-sha256", "-sign", "key.pem", "-out", "bare.bin", "bare.txt")
	if _, err := c.DecryptPhone(response, base64.StdEncoding.EncodeToString(read(t, dir, "bare.bin"))); !errors.Is(err, alipay.ErrSignature) {
		t.Errorf("bare sign: %v", err)
	}
	// One tampered character of response, anywhere.
	for i := range response {
		b := []byte(response)
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		if _, err := c.DecryptPhone(string(b), sign); !errors.Is(err, alipay.ErrSignature) || !errors.Is(err, alipay.ErrDecrypt) {
			t.Fatalf("response byte %d tampered: %v", i, err)
		}
	}
}
