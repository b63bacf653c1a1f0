package keysettest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

var b64 = base64.RawURLEncoding

// SignJWS builds a compact JWS. header is used as given (its "alg" is set to alg
// only when absent, so attack tokens can lie about their algorithm); claims are
// JSON-encoded unless they are a []byte or json.RawMessage, used verbatim.
// key is *rsa.PrivateKey (RS*/PS*), *ecdsa.PrivateKey (ES*, r‖s), []byte (HS*),
// or nil (empty signature).
func SignJWS(alg string, key any, header map[string]any, claims any) (string, error) {
	h := make(map[string]any, len(header)+1)
	for k, v := range header {
		h[k] = v
	}
	if _, ok := h["alg"]; !ok {
		h["alg"] = alg
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	var pb []byte
	switch c := claims.(type) {
	case []byte:
		pb = c
	case json.RawMessage:
		pb = c
	default:
		if pb, err = json.Marshal(claims); err != nil {
			return "", err
		}
	}
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(pb)
	sig, err := Signature(alg, key, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// Signature signs input with alg the way JWS does.
func Signature(alg string, key any, input []byte) ([]byte, error) {
	if key == nil {
		return nil, nil
	}
	var h crypto.Hash
	switch alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	default:
		return nil, fmt.Errorf("keysettest: unsupported alg %q", alg)
	}
	switch k := key.(type) {
	case []byte:
		m := hmac.New(h.New, k)
		m.Write(input)
		return m.Sum(nil), nil
	case *rsa.PrivateKey:
		d := digest(h, input)
		if alg[0] == 'P' {
			return rsa.SignPSS(rand.Reader, k, h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, h, d)
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest(h, input))
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	}
	return nil, fmt.Errorf("keysettest: unsupported key %T", key)
}

func digest(h crypto.Hash, in []byte) []byte {
	w := h.New()
	w.Write(in)
	return w.Sum(nil)
}

// ECDSASignature encodes r and s as a P-256 JWS signature (for forged signatures
// such as r = s = 0).
func ECDSASignature(r, s *big.Int) []byte {
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}
