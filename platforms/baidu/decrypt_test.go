package baidu_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
)

// TestDecryptBaiduExample decrypts the example of Baidu's own page
// (swan-docs, develop/api/open/log_userdata): its padding is 28 bytes,
// PKCS#7 over 32-byte blocks.
func TestDecryptBaiduExample(t *testing.T) {
	const (
		key  = "1df09d0a1677dd72b8325aec59576e0c"
		iv   = "1df09d0a1677dd72b8325Q=="
		data = "OpCoJgs7RrVgaMNDixIvaCIyV2SFDBNLivgkVqtzq2GC10egsn+PKmQ/+5q+chT8xzldLUog2haTItyIkKyvzvmXonBQLIMeq54axAu9c3KG8IhpFD6+ymHocmx07ZKi7eED3t0KyIxJgRNSDkFk5RV1ZP2mSWa7ZgCXXcAbP0RsiUcvhcJfrSwlpsm0E1YJzKpYy429xrEEGvK+gfL+Cw=="
	)
	c := baidu.NewClient("y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7", "sk")
	raw, err := c.Decrypt(key, data, iv)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"openid":"open_id","nickname":"baidu_user","headimgurl":"url of image","sex":1}`; string(raw) != want {
		t.Errorf("got %s, want %s", raw, want)
	}
	other := baidu.NewClient("x2dTfnWfkx2OXttMEMWlGHoB1KzMogm7", "sk")
	if _, err := other.Decrypt(key, data, iv); !errors.Is(err, baidu.ErrWatermark) {
		t.Errorf("another App Key: %v", err)
	}
}

func TestDecryptRoundTrip(t *testing.T) {
	srv, c := newPair(t)
	s := login(t, c, "alice")
	data, iv, err := srv.SealPhone("alice")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.DecryptPhone(s.SessionKey, data, iv)
	if err != nil {
		t.Fatal(err)
	}
	if p.PurePhoneNumber != srv.Phone("alice") || p.PhoneNumber != p.PurePhoneNumber || p.CountryCode != "" {
		t.Errorf("phone = %+v", *p)
	}
	if got := p.String(); strings.Contains(got, p.PurePhoneNumber[3:7]) || !strings.HasPrefix(got, "150") {
		t.Errorf("String() = %q, want masked", got)
	}
	data, iv, _ = srv.Seal("alice", map[string]any{"nickName": "Alice", "sex": 1})
	raw, err := c.Decrypt(s.SessionKey, data, iv)
	if err != nil || string(raw) != `{"nickName":"Alice","sex":1}` {
		t.Errorf("Decrypt = %s, %v", raw, err)
	}
	// An older key fails once the user has logged in again.
	login(t, c, "alice:2")
	if _, err := c.Decrypt(srv.SessionKey("alice"), data, iv); !errors.Is(err, baidu.ErrDecrypt) {
		t.Errorf("stale key: %v", err)
	}
}

// seal16 seals like Baidu but pads to 16 bytes: still PKCS#7, still
// accepted.
func seal16(t *testing.T, key string, plain []byte) (string, string) {
	t.Helper()
	k, _ := base64.StdEncoding.DecodeString(key)
	b, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	pad := 16 - len(plain)%16
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	iv := make([]byte, 16)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(iv)
}

func layout(n uint32, body, tail string) []byte {
	p := append(make([]byte, 16), binary.BigEndian.AppendUint32(nil, n)...)
	return append(append(p, body...), tail...)
}

func TestDecryptRefusals(t *testing.T) {
	_, c := newPair(t)
	key := login(t, c, "alice").SessionKey
	obj := `{"mobile":"15000000000"}`
	d16, iv16 := seal16(t, key, layout(uint32(len(obj)), obj, appKey))
	if _, err := c.DecryptPhone(key, d16, iv16); err != nil {
		t.Errorf("16-byte padding: %v", err)
	}

	// Well-formed ciphertexts of a wrong plaintext.
	for _, tt := range []struct {
		name  string
		plain []byte
		want  error
	}{
		{"wrong App Key", layout(uint32(len(obj)), obj, "other"), baidu.ErrWatermark},
		{"App Key a prefix of ours", layout(uint32(len(obj)), obj, appKey[:31]), baidu.ErrWatermark},
		{"no App Key", layout(uint32(len(obj)), obj, ""), baidu.ErrWatermark},
		{"length overruns", layout(0xffffffff, obj, appKey), baidu.ErrDecrypt},
		{"length one too long", layout(uint32(len(obj)+len(appKey)+1), obj, appKey), baidu.ErrDecrypt},
		{"length zero", layout(0, obj, appKey), baidu.ErrDecrypt},
		{"too short for the header", []byte("0123456789abcdef01"), baidu.ErrDecrypt},
		{"not JSON", layout(3, "abc", appKey), baidu.ErrDecrypt},
		{"an array", layout(2, "[]", appKey), baidu.ErrDecrypt},
		{"duplicate keys", layout(27, `{"mobile":"1","mobile":"2"}`, appKey), baidu.ErrDecrypt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, iv, err := baidutest.SealRaw(key, tt.plain)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Decrypt(key, data, iv); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	phoneless, piv, _ := baidutest.SealWithKey(key, appKey, []byte(`{"phone":"1"}`))
	if _, err := c.DecryptPhone(key, phoneless, piv); !errors.Is(err, baidu.ErrDecrypt) {
		t.Errorf("no mobile: %v", err)
	}

	// Unusable inputs, refused before decryption.
	data, iv, _ := baidutest.SealWithKey(key, appKey, []byte(obj))
	b64 := base64.StdEncoding.EncodeToString
	for _, tt := range []struct{ name, key, data, iv string }{
		{"16-byte key", b64(make([]byte, 16)), data, iv},
		{"32-byte key", b64(make([]byte, 32)), data, iv},
		{"key not base64", "!!!", data, iv},
		{"short iv", key, data, "AAAA"},
		{"iv not base64", key, data, "%%%"},
		{"data not blocks", key, "AAAA", iv},
		{"empty data", key, "", iv},
	} {
		_, err := c.Decrypt(tt.key, tt.data, tt.iv)
		if !errors.Is(err, baidu.ErrInvalidInput) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
