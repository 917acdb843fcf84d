package alipay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/opendata"
)

// MinKeyBits is the smallest RSA key accepted: RSA2 keys made by
// Alipay's key tool are 2048 bits, and anything smaller is too weak to
// sign with.
const MinKeyBits = 2048

// AESKeySize is the size of the content key (接口内容加密方式, AES):
// Alipay's console gives a 128-bit key, base64.
const AESKeySize = 16

// ParsePrivateKeyPEM parses the app's private key: a PEM block "RSA
// PRIVATE KEY" (PKCS#1) or "PRIVATE KEY" (PKCS#8), or the bare base64 of
// either DER form, which is what Alipay's key tool prints. Anything else
// (an EC or encrypted key, a certificate, a public key) and RSA keys under
// MinKeyBits are refused. Errors describe the input, never quote it.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	der, kind, err := readDER(data)
	if err != nil {
		return nil, err
	}
	var key any
	switch kind {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(der)
	case "":
		if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
			key, err = x509.ParsePKCS1PrivateKey(der)
		}
	default:
		return nil, fmt.Errorf("alipay: the PEM block is %q, not an RSA private key (PKCS#1 \"RSA PRIVATE KEY\" or PKCS#8 \"PRIVATE KEY\")", clip(kind, 40))
	}
	if err != nil {
		return nil, errors.New("alipay: not a PKCS#1 or PKCS#8 private key")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("alipay: the private key is %T, not RSA (RSA2 needs an RSA key)", key)
	}
	if err := checkSize(rk.N.BitLen()); err != nil {
		return nil, err
	}
	if err := rk.Validate(); err != nil {
		return nil, errors.New("alipay: the RSA private key is inconsistent")
	}
	return rk, nil
}

// ParsePublicKeyPEM parses Alipay's public key (支付宝公钥, public-key
// mode): a PEM block "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS#1), or
// the bare base64 of either, as Alipay's console shows it. A certificate
// (certificate mode) is refused: this package verifies with the public
// key. Keys under MinKeyBits are refused.
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	der, kind, err := readDER(data)
	if err != nil {
		return nil, err
	}
	var key any
	switch kind {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(der)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(der)
	case "":
		if key, err = x509.ParsePKIXPublicKey(der); err != nil {
			key, err = x509.ParsePKCS1PublicKey(der)
		}
	case "CERTIFICATE":
		return nil, errors.New("alipay: a certificate (certificate mode) is not supported: give Alipay's public key (public-key mode)")
	default:
		return nil, fmt.Errorf("alipay: the PEM block is %q, not an RSA public key (PKIX \"PUBLIC KEY\" or PKCS#1 \"RSA PUBLIC KEY\")", clip(kind, 40))
	}
	if err != nil {
		return nil, errors.New("alipay: not a PKIX or PKCS#1 public key")
	}
	rk, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("alipay: the public key is %T, not RSA", key)
	}
	if err := checkSize(rk.N.BitLen()); err != nil {
		return nil, err
	}
	return rk, nil
}

// ParseAESKey decodes the content key as Alipay's console shows it:
// base64 of 16 bytes.
func ParseAESKey(s string) ([]byte, error) {
	k, err := opendata.DecodeBase64(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("alipay: the AES key is not base64")
	}
	if len(k) != AESKeySize {
		return nil, fmt.Errorf("alipay: the AES key is %d bytes, not %d", len(k), AESKeySize)
	}
	return k, nil
}

func checkSize(bits int) error {
	if bits < MinKeyBits {
		return fmt.Errorf("alipay: the RSA key has %d bits, fewer than %d", bits, MinKeyBits)
	}
	return nil
}

// readDER returns the DER of data's first PEM block and its type, or of
// data as bare base64 (type ""). An encrypted PEM block is refused.
func readDER(data []byte) ([]byte, string, error) {
	if block, _ := pem.Decode(data); block != nil {
		if _, enc := block.Headers["Proc-Type"]; enc {
			return nil, "", errors.New("alipay: the PEM block is encrypted: give the key unencrypted")
		}
		return block.Bytes, block.Type, nil
	}
	s := strings.Join(strings.Fields(string(data)), "")
	if s == "" {
		return nil, "", errors.New("alipay: no key: empty input")
	}
	if strings.Contains(s, "-----") {
		return nil, "", errors.New("alipay: a malformed PEM block")
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, "", errors.New("alipay: neither a PEM block nor base64 DER")
	}
	return der, "", nil
}
