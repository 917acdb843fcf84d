package alipay

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"testing"
)

// fuzzKey is made per fuzz target: the targets need one Alipay key.
func fuzzKey(f *testing.F) *rsa.PrivateKey {
	f.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// FuzzReadAnswer feeds arbitrary bodies to the answer reader: it must
// never panic, must fail with ErrBadResponse unless the body holds one
// inner object signed by the key, and what it returns must be bytes of the
// body, the ones signed.
func FuzzReadAnswer(f *testing.F) {
	key := fuzzKey(f)
	inner := `{"open_id" : "0abc", "access_token":"x"}`
	sign, _ := Sign(key, []byte(inner))
	f.Add([]byte(`{"alipay_system_oauth_token_response":` + inner + `,"sign":"` + sign + `"}`))
	f.Add([]byte(`{"error_response":{"code":"40002","sub_code":"isv.invalid-app-id"}}`))
	f.Add([]byte(`{"alipay_system_oauth_token_response":{},"alipay_system_oauth_token_response":{},"sign":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		obj, err := readAnswer(APICode2Session, APICode2Session, body, &key.PublicKey)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if !bytes.Contains(body, obj.raw) || Verify(&key.PublicKey, obj.raw, sign) != nil {
			t.Fatalf("returned %q, not the signed bytes of %q", obj.raw, body)
		}
	})
}

// FuzzDecryptPhone feeds arbitrary response and sign strings to
// DecryptPhone: no panic, one of its error classes, nothing decrypted
// without a verified sign.
func FuzzDecryptPhone(f *testing.F) {
	key := fuzzKey(f)
	c := NewClient("2021000000000000", nil, &key.PublicKey, WithAESKey(bytes.Repeat([]byte{3}, 16)))
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", "")
	f.Add("{}", "x")
	f.Fuzz(func(t *testing.T, response, sign string) {
		_, err := c.DecryptPhone(response, sign)
		var ae *APIError
		switch {
		case err == nil || errors.As(err, &ae):
			t.Fatalf("accepted an unsigned payload %q", response)
		case !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrDecrypt):
			t.Fatalf("unexpected error class: %v", err)
		case errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrSignature):
			t.Fatalf("decrypted without a verified sign: %v", err)
		}
	})
}

// FuzzDecryptPhonePlaintext seals arbitrary plaintexts correctly: only a
// JSON object with code 10000 and a mobile gives a number, and nothing
// panics.
func FuzzDecryptPhonePlaintext(f *testing.F) {
	key := fuzzKey(f)
	aesKey := bytes.Repeat([]byte{3}, 16)
	c := NewClient("2021000000000000", nil, &key.PublicKey, WithAESKey(aesKey))
	f.Add([]byte(`{"code":"10000","msg":"Success","mobile":"15976719050"}`))
	f.Add([]byte(`{"code":"40003","subCode":"isv.invalid-auth-relations"}`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		resp, sign := sealForTest(t, key, aesKey, plain)
		p, err := c.DecryptPhone(resp, sign)
		var want struct {
			Code   string `json:"code"`
			Mobile string `json:"mobile"`
		}
		ok := json.Unmarshal(plain, &want) == nil && want.Code == "10000" && want.Mobile != ""
		switch {
		case err == nil && (!ok || p.PurePhoneNumber != want.Mobile):
			t.Fatalf("accepted %q as %v", plain, p)
		case err != nil && errors.Is(err, ErrSignature):
			t.Fatalf("a good sign refused: %v", err)
		}
	})
}
