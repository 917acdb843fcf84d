package alipay

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// An answer of the gateway is one JSON object:
//
//	{"<method with _ for .>_response": {...}, "sign": "..."}
//	{"error_response": {...}, "sign": "..."}
//
// and sign covers the EXACT text of the inner object as it stands in the
// body (自行实现验签: the SDKs cut that text out of the body, they never
// re-encode it). Re-encoding first changes spacing, key order and
// escapes, and the sign no longer verifies -- or, worse, a client that
// verifies something else than what it reads can be fed a forged object.
// So the inner object is taken as raw bytes, verified, and only then
// parsed, from those same bytes.

// gatewayObject is a verified inner object and what it says.
type gatewayObject struct {
	raw json.RawMessage // exactly as in the body, verified
	err *APIError       // nil: code absent or "10000"
}

// status is the part every inner object may carry.
type status struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	SubMsg  string `json:"sub_msg"`
}

// readAnswer splits, verifies and classifies one answer of method.
func readAnswer(api, method string, data []byte, pub *rsa.PublicKey) (*gatewayObject, error) {
	respKey := strings.ReplaceAll(method, ".", "_") + "_response"
	fields, err := topLevel(data)
	if err != nil {
		return nil, newError(api, ErrBadResponse, err.Error())
	}
	raw, isErr := fields[respKey], false
	if e, ok := fields["error_response"]; ok {
		if raw != nil {
			return nil, newError(api, ErrBadResponse, "answer has both "+respKey+" and error_response")
		}
		raw, isErr = e, true
	}
	if raw == nil {
		return nil, newError(api, ErrBadResponse, "answer has no "+respKey)
	}
	var sign string
	if s, ok := fields["sign"]; ok && json.Unmarshal(s, &sign) != nil {
		return nil, newError(api, ErrBadResponse, "sign is not a string")
	}
	if sign == "" {
		// Alipay leaves unsigned the errors it cannot sign for this app
		// (an app id it does not know). Shown, never believed.
		detail := "answer is not signed"
		var st status
		if isErr && json.Unmarshal(raw, &st) == nil {
			detail = fmt.Sprintf("unsigned error_response (code %q, sub_code %q; not verified)", clip(cleanText(st.Code), 16), clip(cleanText(st.SubCode), 64))
		}
		return nil, newError(api, ErrBadResponse, detail, ErrSignature)
	}
	if err := Verify(pub, raw, sign); err != nil {
		return nil, newError(api, ErrBadResponse, "the sign of the answer does not verify with Alipay's public key", ErrSignature)
	}
	var st status
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &st) != nil {
		return nil, newError(api, ErrBadResponse, "the signed part is not a JSON object with string codes")
	}
	obj := &gatewayObject{raw: raw}
	if isErr || st.Code != "" && st.Code != "10000" {
		obj.err = &APIError{
			API:     api,
			Code:    clip(cleanText(st.Code), 16),
			Msg:     clip(cleanText(st.Msg), 256),
			SubCode: clip(cleanText(st.SubCode), 64),
			SubMsg:  clip(cleanText(st.SubMsg), 256),
		}
	}
	return obj, nil
}

// topLevel returns the members of the one JSON object data holds, each
// value exactly as written (json.RawMessage gets the value's own bytes).
// A repeated key, a body that is not one object, or anything after it is
// an error: with two copies of a key, what is verified and what is read
// could differ.
func topLevel(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("answer is not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("malformed JSON")
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("malformed JSON")
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("answer repeats the key %q", clip(cleanText(key), 64))
		}
		fields[key] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return fields, nil
}

// SignedPart returns the inner object of a gateway answer to method (the
// "<method>_response" or "error_response" member) exactly as it stands in
// body, after verifying its sign with alipayPublicKey. An answer that
// carries an error is returned with an *APIError; one that is not signed,
// or whose sign does not verify, is ErrBadResponse with ErrSignature. For
// callers of other gateway methods than those of Client.
func SignedPart(body []byte, method string, alipayPublicKey *rsa.PublicKey) (json.RawMessage, error) {
	if alipayPublicKey == nil {
		return nil, newError(method, ErrInvalidInput, "no Alipay public key")
	}
	obj, err := readAnswer(method, method, body, alipayPublicKey)
	if err != nil {
		return nil, err
	}
	if obj.err != nil {
		return obj.raw, obj.err
	}
	return obj.raw, nil
}
