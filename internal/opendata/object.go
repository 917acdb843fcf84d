package opendata

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode"
)

// Object checks that plain is exactly one JSON object (white space around
// it allowed, nothing else) in which no object, at any depth, repeats a
// key, and returns it re-encoded, compact, from what was checked: keys in
// their order, strings as decoded (without HTML escaping), numbers with
// their text. Anything else is ErrDecrypt.
//
// Keys are compared after unescaping ("openId" and "open\u0049d" are the
// same key) and without case ("openId" and "OpenID" are too: Go's
// encoding/json matches struct fields that way).
//
// Why: platforms never repeat a key, so a repeated one is a forgery
// attempt aimed at the parsers downstream. {"openId":"x","openId":"y"}
// passes a check that reads the last key while a parser that keeps the
// first reads x. Answering the re-encoding rather than plain means no
// later parser can read anything but what was checked.
func Object(plain []byte) (json.RawMessage, error) {
	if !json.Valid(plain) {
		return nil, fail(ErrDecrypt, "")
	}
	out, err := reencode(plain)
	if err != nil {
		return nil, fail(ErrDecrypt, "")
	}
	return out, nil
}

var errShape = errors.New("not one JSON object without repeated keys")

// reencode walks the tokens of plain (already known to be valid JSON),
// refusing a top level that is not an object and repeated keys, and
// writes them back compactly.
func reencode(plain []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.UseNumber()
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)

	// One entry per open object or array: the keys seen (objects), nil
	// (arrays); and whether the next token of the object is a key.
	type level struct {
		keys  map[string]bool
		isKey bool
		n     int // values written so far at this level
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(stack) == 0 && out.Len() > 0 {
			return nil, errShape // a second top-level value
		}
		if len(stack) == 0 && tok != json.Delim('{') {
			return nil, errShape
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			out.WriteByte(byte(d))
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].isKey = stack[len(stack)-1].keys != nil
			}
			continue
		}
		// A key, or a value in an array or after a key.
		if top != nil {
			switch {
			case top.keys != nil && top.isKey:
				k := tok.(string) // the decoder guarantees object keys are strings
				f := fold(k)
				if top.keys[f] {
					return nil, errShape
				}
				top.keys[f] = true
				if top.n > 0 {
					out.WriteByte(',')
				}
				top.n++
				if err := writeString(enc, &out, k); err != nil {
					return nil, err
				}
				out.WriteByte(':')
				top.isKey = false
				continue
			case top.keys == nil: // array element
				if top.n > 0 {
					out.WriteByte(',')
				}
				top.n++
			}
		}
		switch v := tok.(type) {
		case json.Delim: // '{' or '['
			out.WriteByte(byte(v))
			l := &level{}
			if v == '{' {
				l.keys, l.isKey = map[string]bool{}, true
			}
			stack = append(stack, l)
			continue
		case string:
			if err := writeString(enc, &out, v); err != nil {
				return nil, err
			}
		case json.Number:
			out.WriteString(string(v))
		case bool:
			if v {
				out.WriteString("true")
			} else {
				out.WriteString("false")
			}
		case nil:
			out.WriteString("null")
		}
		if top != nil && top.keys != nil {
			top.isKey = true
		}
	}
	if len(stack) != 0 || out.Len() == 0 {
		return nil, errShape
	}
	return out.Bytes(), nil
}

// writeString appends s as a JSON string (Encoder.Encode adds a newline,
// which is taken off).
func writeString(enc *json.Encoder, out *bytes.Buffer, s string) error {
	if err := enc.Encode(s); err != nil {
		return err
	}
	out.Truncate(out.Len() - 1)
	return nil
}

// fold maps a key to the form encoding/json's case-insensitive field
// match sees as equal (it also folds the Kelvin sign and the long s).
func fold(k string) string {
	return strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, k)
}
