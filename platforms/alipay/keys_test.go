package alipay_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
)

// TestParseKeys reads keys openssl wrote in every form Alipay's tools and
// docs use, and refuses the other kinds with a clear error.
func TestParseKeys(t *testing.T) {
	priv, _, dir := opensslKeys(t)
	openssl(t, dir, "pkey", "-in", "key.pem", "-traditional", "-out", "pkcs1.pem")
	openssl(t, dir, "rsa", "-in", "key.pem", "-RSAPublicKey_out", "-out", "pub-pkcs1.pem")
	openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "small.pem")
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem")
	openssl(t, dir, "pkey", "-in", "ec.pem", "-pubout", "-out", "ec-pub.pem")
	openssl(t, dir, "pkey", "-in", "small.pem", "-pubout", "-out", "small-pub.pem")
	openssl(t, dir, "req", "-x509", "-new", "-key", "key.pem", "-subj", "/CN=alipay", "-days", "1", "-out", "cert.pem")
	openssl(t, dir, "pkey", "-in", "key.pem", "-aes256", "-passout", "pass:x", "-traditional", "-out", "enc.pem")

	if !strings.Contains(string(read(t, dir, "pkcs1.pem")), "BEGIN RSA PRIVATE KEY") {
		t.Fatal("openssl did not write PKCS#1")
	}
	bare := func(name string) []byte {
		b, _ := pem.Decode(read(t, dir, name))
		return []byte(base64.StdEncoding.EncodeToString(b.Bytes))
	}
	for name, data := range map[string][]byte{
		"PKCS#8": read(t, dir, "key.pem"), "PKCS#1": read(t, dir, "pkcs1.pem"),
		"bare PKCS#8": bare("key.pem"), "bare PKCS#1": bare("pkcs1.pem"),
	} {
		k, err := alipay.ParsePrivateKeyPEM(data)
		if err != nil || !k.Equal(priv) {
			t.Errorf("private %s: %v", name, err)
		}
	}
	for name, data := range map[string][]byte{
		"PKIX": read(t, dir, "pub.pem"), "PKCS#1": read(t, dir, "pub-pkcs1.pem"), "bare PKIX": bare("pub.pem"),
	} {
		k, err := alipay.ParsePublicKeyPEM(data)
		if err != nil || !k.Equal(&priv.PublicKey) {
			t.Errorf("public %s: %v", name, err)
		}
	}
	for name, tt := range map[string]struct {
		data []byte
		want string
	}{
		"1024 bits":   {read(t, dir, "small.pem"), "1024 bits"},
		"EC":          {read(t, dir, "ec.pem"), "not RSA"},
		"encrypted":   {read(t, dir, "enc.pem"), "encrypted"},
		"certificate": {read(t, dir, "cert.pem"), "not an RSA private key"},
		"public":      {read(t, dir, "pub.pem"), "not an RSA private key"},
		"empty":       {nil, "empty"},
		"junk":        {[]byte("not a key"), "neither"},
	} {
		_, err := alipay.ParsePrivateKeyPEM(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("private %s: %v", name, err)
		}
	}
	for name, tt := range map[string]struct {
		data []byte
		want string
	}{
		"1024 bits":   {read(t, dir, "small-pub.pem"), "1024 bits"},
		"EC":          {read(t, dir, "ec-pub.pem"), "not RSA"},
		"certificate": {read(t, dir, "cert.pem"), "certificate mode"},
		"private":     {read(t, dir, "key.pem"), "not an RSA public key"},
	} {
		_, err := alipay.ParsePublicKeyPEM(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("public %s: %v", name, err)
		}
	}
	// No error quotes the key.
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	broken := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der[:len(der)-40]})
	if _, err := alipay.ParsePrivateKeyPEM(broken); err == nil || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(der[:30])) {
		t.Errorf("truncated key: %v", err)
	}
}

func TestParseAESKey(t *testing.T) {
	if k, err := alipay.ParseAESKey(" AAECAwQFBgcICQoLDA0ODw==\n"); err != nil || len(k) != 16 || k[15] != 15 {
		t.Errorf("good key: %v %v", k, err)
	}
	for _, s := range []string{"", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", "not base64!"} {
		if _, err := alipay.ParseAESKey(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
