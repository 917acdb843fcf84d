package opendata

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func seal(t testing.TB, key, iv, plain []byte, padLen int) []byte {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(padLen)}, padLen)...)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(buf, buf)
	return buf
}

func pkcs7Len(n int) int { return 16 - n%16 }

func TestDecodeBase64(t *testing.T) {
	for in, want := range map[string]string{"aGk+": "hi>", "aGk ": "hi>", "": ""} {
		got, err := DecodeBase64(in)
		if err != nil || string(got) != want {
			t.Errorf("DecodeBase64(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"aGk-", "aGk", "!!!!"} {
		if _, err := DecodeBase64(in); err == nil {
			t.Errorf("DecodeBase64(%q) accepted", in)
		}
	}
}

func TestDecryptCBC(t *testing.T) {
	iv := bytes.Repeat([]byte{9}, 16)
	plain := []byte("sixteen bytes!!!and more")
	for _, n := range []int{16, 24, 32} {
		key := bytes.Repeat([]byte{7}, n)
		ct := seal(t, key, iv, plain, pkcs7Len(len(plain)))
		orig := bytes.Clone(ct)
		got, err := DecryptCBC(key, iv, ct)
		if err != nil || !bytes.Equal(got, plain) || !bytes.Equal(ct, orig) {
			t.Errorf("AES-%d: %q, %v (ciphertext changed: %v)", n*8, got, err, !bytes.Equal(ct, orig))
		}
	}
	key := bytes.Repeat([]byte{7}, 16)
	body := bytes.Repeat([]byte{'a'}, 16)
	tests := []struct {
		name        string
		key, iv, ct []byte
		want        error
	}{
		{"key 0", nil, iv, seal(t, key, iv, body, 16), ErrInvalidInput},
		{"key 15", key[:15], iv, seal(t, key, iv, body, 16), ErrInvalidInput},
		{"key 17", append(bytes.Clone(key), 1), iv, seal(t, key, iv, body, 16), ErrInvalidInput},
		{"iv 15", key, iv[:15], seal(t, key, iv, body, 16), ErrInvalidInput},
		{"iv 17", key, append(bytes.Clone(iv), 1), seal(t, key, iv, body, 16), ErrInvalidInput},
		{"ct empty", key, iv, nil, ErrInvalidInput},
		{"ct 15", key, iv, make([]byte, 15), ErrInvalidInput},
		{"ct 17", key, iv, make([]byte, 17), ErrInvalidInput},
		{"pad 0", key, iv, seal(t, key, iv, body, 0), ErrDecrypt},
		{"pad 17", key, iv, seal(t, key, iv, append(bytes.Clone(body), body[:15]...), 17), ErrDecrypt},
		{"pad differs", key, iv, seal(t, key, iv, append(bytes.Clone(body), append(bytes.Repeat([]byte{4}, 13), 3, 4, 4)...), 0), ErrDecrypt},
		{"wrong key", bytes.Repeat([]byte{8}, 16), iv, seal(t, key, iv, body, 16), ErrDecrypt},
	}
	for _, tt := range tests {
		got, err := DecryptCBC(tt.key, tt.iv, tt.ct)
		if !errors.Is(err, tt.want) || got != nil {
			t.Errorf("%s: %q, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestObject(t *testing.T) {
	ok := map[string]string{
		`{"a":1}`: `{"a":1}`,
		" \n{ \"b\" : [ 1 , 2.50 , {\"c\":null} ] , \"a\" : true } \t": `{"b":[1,2.50,{"c":null}],"a":true}`,
		`{"x":"<&>\u00e9\n"}`:                             `{"x":"<&>é\n"}`,
		`{"n":-0.0e+10,"s":"a\"b"}`:                       `{"n":-0.0e+10,"s":"a\"b"}`,
		`{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":1}]}`: `{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":1}]}`,
		`{}`:            `{}`,
		`{"a":[[],{}]}`: `{"a":[[],{}]}`,
	}
	for in, want := range ok {
		got, err := Object([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Object(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{
		``, ` `, `[]`, `"{}"`, `1`, `null`, `{"a":1`, `{"a":1}x`, `{"a":1}{"b":2}`, `{"a":1} {}`, `{a:1}`, `{"a":1,}`,
		`{"openId":"x","openId":"y"}`,
		`{"openId":"x","open\u0049d":"y"}`,
		`{"openId":"x","OPENID":"y"}`,
		`{"k":1,"\u212a":2}`, // Kelvin sign folds to k
		`{"a":{"b":1,"b":2}}`,
		`{"a":[{"b":1},{"c":1,"c":2}]}`,
		`{"a":[[{"z":1,"z":1}]]}`,
	} {
		if got, err := Object([]byte(in)); !errors.Is(err, ErrDecrypt) || got != nil {
			t.Errorf("Object(%q) = %s, %v; want ErrDecrypt", in, got, err)
		}
	}
}

func TestDecryptObject(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	iv := bytes.Repeat([]byte{9}, 16)
	good := []byte(`{"a" : 1}`)
	got, err := DecryptObject(key, iv, seal(t, key, iv, good, pkcs7Len(len(good))))
	if err != nil || string(got) != `{"a":1}` {
		t.Fatalf("DecryptObject = %s, %v", got, err)
	}
	body := []byte(`{"watermark":{"appid":"x"}}     `)[:32]
	_, e1 := DecryptObject(key, iv, seal(t, key, iv, body, 0))
	notJSON := []byte("hello")
	_, e2 := DecryptObject(key, iv, seal(t, key, iv, notJSON, pkcs7Len(len(notJSON))))
	dup := []byte(`{"a":1,"a":2}`)
	_, e3 := DecryptObject(key, iv, seal(t, key, iv, dup, pkcs7Len(len(dup))))
	for _, err := range []error{e1, e2, e3} {
		if !errors.Is(err, ErrDecrypt) || err.Error() != e1.Error() {
			t.Errorf("failure %v: want one ErrDecrypt message %q", err, e1)
		}
	}
	if _, err := DecryptObject(key[:8], iv, make([]byte, 16)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("short key: %v", err)
	}
}

func TestOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	iv := bytes.Repeat([]byte{9}, 16)
	b64 := base64.StdEncoding.EncodeToString
	plain := []byte(`{"a":"b"}`)
	data := b64(seal(t, key, iv, plain, pkcs7Len(len(plain))))
	if got, err := Open(b64(key), data, b64(iv), 16); err != nil || string(got) != string(plain) {
		t.Fatalf("Open = %s, %v", got, err)
	}
	for name, in := range map[string][3]string{
		"key not base64":   {"!!", data, b64(iv)},
		"key 24 bytes":     {b64(make([]byte, 24)), data, b64(iv)},
		"iv not base64":    {b64(key), data, "%"},
		"iv 8 bytes":       {b64(key), data, b64(iv[:8])},
		"data not base64":  {b64(key), "*", b64(iv)},
		"data empty":       {b64(key), "", b64(iv)},
		"data not a block": {b64(key), b64(make([]byte, 20)), b64(iv)},
	} {
		if _, err := Open(in[0], in[1], in[2], 16); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Open(b64(make([]byte, 24)), b64(make([]byte, 16)), b64(iv), 24); !errors.Is(err, ErrDecrypt) {
		t.Errorf("AES-192 of zeros: %v", err)
	}
}

func TestCheckWatermark(t *testing.T) {
	now := time.Unix(1700000000, 0)
	const id = "app1"
	tests := []struct {
		obj    string
		maxAge time.Duration
		ok     bool
	}{
		{`{"watermark":{"appid":"app1","timestamp":1700000000}}`, 0, true},
		{`{"watermark":{"appid":"app1"}}`, 0, true},
		{`{"watermark":{"appid":"app1","timestamp":1700000000}}`, time.Minute, true},
		{`{"watermark":{"appid":"app1","timestamp":1699990000}}`, time.Minute, false},
		{`{"watermark":{"appid":"app1","timestamp":1700010000}}`, time.Minute, false},
		{`{"watermark":{"appid":"app1"}}`, time.Minute, false},
		{`{"watermark":{"appid":"app2","timestamp":1700000000}}`, 0, false},
		{`{"Watermark":{"appid":"app1"}}`, 0, false},
		{`{"watermark":{"AppID":"app1"}}`, 0, false},
		{`{"watermark":{"appid":1}}`, 0, false},
		{`{"watermark":{"appid":"app1","timestamp":"1"}}`, 0, false},
		{`{"watermark":null}`, 0, false},
		{`{"watermark":"app1"}`, 0, false},
		{`{}`, 0, false},
		{`[]`, 0, false},
	}
	for _, tt := range tests {
		err := CheckWatermark([]byte(tt.obj), id, tt.maxAge, now)
		if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrWatermark) {
			t.Errorf("CheckWatermark(%s, %v) = %v", tt.obj, tt.maxAge, err)
		}
	}
}

func TestParsePhone(t *testing.T) {
	for in, want := range map[string]Phone{
		`{"phoneNumber":"+1 555","purePhoneNumber":"555","countryCode":"1"}`: {"+1 555", "555", "1"},
		`{"phoneNumber":"138","countryCode":86}`:                             {"138", "", "86"},
		`{"purePhoneNumber":"138","countryCode":null}`:                       {"", "138", ""},
	} {
		got, err := ParsePhone([]byte(in))
		if err != nil || got != want {
			t.Errorf("ParsePhone(%s) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{`{}`, `{"phoneNumber":""}`, `{"phoneNumber":1}`, `{"phoneNumber":"1","countryCode":8.6}`,
		`{"phoneNumber":"1","countryCode":-1}`, `{"phoneNumber":"1","countryCode":123456789}`, `[]`} {
		if _, err := ParsePhone([]byte(in)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("ParsePhone(%s): %v", in, err)
		}
	}
}
