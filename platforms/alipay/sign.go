package alipay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"sort"
	"strings"
)

// Alipay's signing rule for requests (自行实现签名, opendocs.alipay.com
// common/02kf5q; the same in its SDKs): take every parameter but sign,
// drop those with an empty value, sort by name in byte order, join as
// "name=value" (values raw, not URL-encoded) with "&", and sign the UTF-8
// bytes with SHA256withRSA (sign_type RSA2, PKCS#1 v1.5); sign is the
// standard base64 of the result.

// SignContent returns the string a request's sign covers.
func SignContent(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if k == "sign" || len(v) == 0 || v[0] == "" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params.Get(k))
	}
	return b.String()
}

// Sign returns base64(SHA256withRSA(key, content)), an RSA2 sign.
func Sign(key *rsa.PrivateKey, content []byte) (string, error) {
	if key == nil {
		return "", errors.New("alipay: no private key")
	}
	sum := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", errors.New("alipay: signing failed")
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks an RSA2 sign (standard base64) over content with key.
// It returns nil or an error wrapping ErrSignature; content is verified
// exactly as given, never re-encoded.
func Verify(key *rsa.PublicKey, content []byte, sign string) error {
	if key == nil {
		return errors.New("alipay: no public key")
	}
	sig, err := base64.StdEncoding.DecodeString(sign)
	if err != nil || len(sig) == 0 {
		return newError("", ErrSignature, "sign is not base64")
	}
	sum := sha256.Sum256(content)
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return newError("", ErrSignature, "")
	}
	return nil
}
