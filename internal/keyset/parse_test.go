package keyset_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/keyset/keysettest"
)

func jwkJSON(t *testing.T, key any, kid, alg, use string) string {
	t.Helper()
	b, err := (&jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseDocument(t *testing.T) {
	rsaKey := keysettest.PoolRSAKey(0)
	ecKey := keysettest.PoolECKey(0)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaJWK := jwkJSON(t, &rsaKey.PublicKey, "r1", "", "sig")
	ecJWK := jwkJSON(t, &ecKey.PublicKey, "e1", "ES256", "")
	b64 := base64.RawURLEncoding.EncodeToString
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)

	type want struct {
		ids     []string // usable kids in order
		algs    []jose.SignatureAlgorithm
		skipped int
		err     error // wrapped error expected (nil: success)
	}
	for _, tc := range []struct {
		name string
		doc  string
		fmt  keyset.Format
		want want
	}{
		{"rsa without alg is RS256, ec with alg", `{"keys":[` + rsaJWK + `,` + ecJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"r1", "e1"}, algs: []jose.SignatureAlgorithm{jose.RS256, jose.ES256}}},
		{"P-384 implies ES384", `{"keys":[` + jwkJSON(t, &p384.PublicKey, "p384", "", "") + `]}`, keyset.FormatJWKS,
			want{ids: []string{"p384"}, algs: []jose.SignatureAlgorithm{jose.ES384}}},
		{"PS256 stated on RSA", `{"keys":[` + jwkJSON(t, &rsaKey.PublicKey, "ps", "PS256", "") + `]}`, keyset.FormatJWKS,
			want{ids: []string{"ps"}, algs: []jose.SignatureAlgorithm{jose.PS256}}},
		{"unknown kty and crv skipped", `{"keys":[{"kty":"OKP","crv":"X448","kid":"x","x":"AA"},{"kty":"AKP","alg":"ML-DSA-44","kid":"m","pub":"AA"},{"kty":"LOL","kid":"l"},` + rsaJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"r1"}, algs: []jose.SignatureAlgorithm{jose.RS256}, skipped: 3}},
		{"encryption key skipped", `{"keys":[` + jwkJSON(t, &rsaKey.PublicKey, "enc", "RSA-OAEP", "enc") + `,` + ecJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"e1"}, algs: []jose.SignatureAlgorithm{jose.ES256}, skipped: 1}},
		{"key_ops without verify skipped", `{"keys":[{"kty":"EC","crv":"P-256","kid":"o","key_ops":["encrypt"],"x":"` + b64(ecKey.X.FillBytes(make([]byte, 32))) + `","y":"` + b64(ecKey.Y.FillBytes(make([]byte, 32))) + `"},` + rsaJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"r1"}, algs: []jose.SignatureAlgorithm{jose.RS256}, skipped: 1}},
		{"HS alg on RSA skipped", `{"keys":[` + jwkJSON(t, &rsaKey.PublicKey, "h", "HS256", "") + `,` + ecJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"e1"}, algs: []jose.SignatureAlgorithm{jose.ES256}, skipped: 1}},
		{"EC alg/curve mismatch skipped", `{"keys":[` + jwkJSON(t, &ecKey.PublicKey, "m", "ES384", "") + `,` + rsaJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"r1"}, algs: []jose.SignatureAlgorithm{jose.RS256}, skipped: 1}},
		{"1024-bit RSA skipped", `{"keys":[` + jwkJSON(t, &weak.PublicKey, "w", "RS256", "") + `,` + ecJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"e1"}, algs: []jose.SignatureAlgorithm{jose.ES256}, skipped: 1}},
		{"private key skipped", `{"keys":[` + jwkJSON(t, ecKey, "priv", "", "") + `,` + rsaJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"r1"}, algs: []jose.SignatureAlgorithm{jose.RS256}, skipped: 1}},
		{"symmetric key skipped", `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},` + rsaJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"r1"}, algs: []jose.SignatureAlgorithm{jose.RS256}, skipped: 1}},
		{"point not on curve skipped", `{"keys":[{"kty":"EC","crv":"P-256","kid":"bad","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"},` + rsaJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"r1"}, algs: []jose.SignatureAlgorithm{jose.RS256}, skipped: 1}},
		{"ambiguous duplicate kid drops both", `{"keys":[` + jwkJSON(t, &rsaKey.PublicKey, "d", "", "") + `,` + jwkJSON(t, &ecKey.PublicKey, "d", "", "") + `,` + ecJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"e1"}, algs: []jose.SignatureAlgorithm{jose.ES256}, skipped: 1}},
		{"exact duplicate collapses", `{"keys":[` + rsaJWK + `,` + rsaJWK + `]}`, keyset.FormatAuto,
			want{ids: []string{"r1"}, algs: []jose.SignatureAlgorithm{jose.RS256}}},
		{"only unusable keys", `{"keys":[{"kty":"OKP","crv":"X448","kid":"x","x":"AA"}]}`, keyset.FormatAuto, want{err: keyset.ErrNoUsableKeys}},
		{"empty set", `{"keys":[]}`, keyset.FormatAuto, want{err: keyset.ErrNoUsableKeys}},
		{"keys not an array", `{"keys":{}}`, keyset.FormatAuto, want{err: errAny}},
		{"not JSON", `<html>`, keyset.FormatAuto, want{err: errAny}},
		{"JWKS expected, PEM map given", `{"a":"b"}`, keyset.FormatJWKS, want{err: errAny}},
		{"PEM map with garbage values", `{"a":"b","c":5}`, keyset.FormatPEMCerts, want{err: keyset.ErrNoUsableKeys}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, skipped, err := keyset.ParseDocument([]byte(tc.doc), tc.fmt)
			if tc.want.err != nil {
				if err == nil || (tc.want.err != errAny && !errors.Is(err, tc.want.err)) {
					t.Fatalf("err = %v, want %v", err, tc.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			var algs []jose.SignatureAlgorithm
			for _, k := range keys {
				ids = append(ids, k.ID)
				algs = append(algs, k.Algorithm)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want.ids) || fmt.Sprint(algs) != fmt.Sprint(tc.want.algs) || len(skipped) != tc.want.skipped {
				t.Fatalf("ids %v algs %v skipped %v; want %v %v %d", ids, algs, skipped, tc.want.ids, tc.want.algs, tc.want.skipped)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestParseDocumentPEM(t *testing.T) {
	f := newFixture(t, nil)
	f.prov.AddKey(jose.ES256)
	resp, err := f.prov.Client().Get(f.prov.CertsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["public-key"] = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKSexBRK64+3c/kZ4KBKLrSkDJpkZ\n9whgacjE32xzKDjHeHlk6qwA5ZIfsUmKYPRgZ2az2WhQAVWNGpdOc0FRPg==\n-----END PUBLIC KEY-----\n"
	m["trailing"] = m[f.prov.Current().ID] + "junk"
	doc, _ := json.Marshal(m)
	keys, skipped, err := keyset.ParseDocument(doc, keyset.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || len(skipped) != 1 || skipped[0].ID != "trailing" {
		t.Fatalf("keys %d skipped %+v", len(keys), skipped)
	}
	for _, k := range keys {
		if (k.ID == "public-key") != (k.Thumbprint == "") {
			t.Fatalf("%s: thumbprint %q (certificates have one, bare keys none)", k.ID, k.Thumbprint)
		}
	}
}
