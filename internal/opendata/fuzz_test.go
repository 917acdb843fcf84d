package opendata

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

// keyTokens counts the keys of every object in valid JSON b.
func keyTokens(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	var inObj []bool
	expectKey := false
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return n
		}
		if expectKey {
			if d, ok := tok.(json.Delim); !ok || d != '}' {
				n++
				expectKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			inObj = append(inObj, true)
			expectKey = true
			continue
		case json.Delim('['):
			inObj = append(inObj, false)
			continue
		case json.Delim('}'), json.Delim(']'):
			inObj = inObj[:len(inObj)-1]
		}
		expectKey = len(inObj) > 0 && inObj[len(inObj)-1]
	}
}

// treeKeys counts the keys of every object in a decoded value.
func treeKeys(v any) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			n += 1 + treeKeys(e)
		}
	case []any:
		for _, e := range v {
			n += treeKeys(e)
		}
	}
	return n
}

func decodeAny(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// FuzzObject: Object never panics; what it accepts is an object that
// re-decodes to itself and means what the input meant; an input with a
// repeated key anywhere is refused.
func FuzzObject(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,{"c":2}]}}`, `{"a":1,"a":2}`, `{"a":[{"b":1,"b":2}]}`,
		`{"openId":"x","open\u0049d":"y"}`, ` {"x" : "\u00e9<>"} `, `[1]`, `{"a":1}x`, `{"a":1e400}`, "{\"\xff\":1}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		out, err := Object(plain)
		valid := json.Valid(plain)
		v, _ := decodeAny(plain)
		_, isObj := v.(map[string]any)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error class: %v", err)
			}
			return
		}
		if !valid || !isObj {
			t.Fatalf("accepted %q", plain)
		}
		if keyTokens(plain) != treeKeys(v) {
			t.Fatalf("accepted a repeated key: %q", plain)
		}
		again, err := Object(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("re-encoding %q is not stable: %q, %v", out, again, err)
		}
		w, err := decodeAny(out)
		if err != nil || !reflect.DeepEqual(v, w) {
			t.Fatalf("%q re-encoded as %q means something else", plain, out)
		}
	})
}

// FuzzDecryptCBC: arbitrary sizes never panic; a correctly padded
// encryption round-trips; failures are ErrInvalidInput or ErrDecrypt.
func FuzzDecryptCBC(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16), []byte("hello"), true)
	f.Add(bytes.Repeat([]byte{1}, 24), bytes.Repeat([]byte{2}, 16), []byte{}, true)
	f.Add([]byte{1}, []byte{2}, []byte{3}, false)
	f.Fuzz(func(t *testing.T, key, iv, data []byte, encrypt bool) {
		ct := data
		var want []byte
		if encrypt && (len(key) == 16 || len(key) == 24 || len(key) == 32) && len(iv) == 16 {
			b, _ := aes.NewCipher(key)
			pad := 16 - len(data)%16
			want = bytes.Clone(data)
			ct = append(bytes.Clone(data), bytes.Repeat([]byte{byte(pad)}, pad)...)
			cipher.NewCBCEncrypter(b, iv).CryptBlocks(ct, ct)
		}
		got, err := DecryptCBC(key, iv, ct)
		if want != nil && (err != nil || !bytes.Equal(got, want)) {
			t.Fatalf("round trip: %q, %v", got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("error class: %v", err)
		}
		if _, err := DecryptObject(key, iv, ct); err != nil && !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("DecryptObject error class: %v", err)
		}
	})
}
