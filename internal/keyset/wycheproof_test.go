package keyset_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/keyset"
)

// Wycheproof vectors (testdata/wycheproof, Apache-2.0, see SOURCE.md) run through
// the verification path a Set's keys use: the JWK goes through keyset.ParseDocument,
// JWS vectors through Key.VerifyCompact (go-jose v4), and raw RSA/ECDSA vectors
// through the exact standard-library calls go-jose makes for RS256
// (rsa.VerifyPKCS1v15 over SHA-256) and ES256 (64-byte r‖s, ecdsa.Verify).

type wpFile struct {
	Algorithm  string            `json:"algorithm"`
	TestGroups []json.RawMessage `json:"testGroups"`
}

type wpTest struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Msg     string   `json:"msg"`
	Sig     string   `json:"sig"`
	JWS     string   `json:"jws"`
	Result  string   `json:"result"`
	Flags   []string `json:"flags"`
}

func loadWycheproof(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wycheproof", name))
	if err != nil {
		t.Fatal(err)
	}
	var f wpFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.TestGroups) == 0 {
		t.Fatalf("%s: no test groups", name)
	}
	return f.TestGroups
}

func keyFromJWK(t *testing.T, jwk json.RawMessage) *keyset.Key {
	t.Helper()
	keys, skipped, err := keyset.ParseDocument([]byte(`{"keys":[`+string(jwk)+`]}`), keyset.FormatJWKS)
	if err != nil || len(keys) != 1 {
		t.Fatalf("key rejected: %v %+v", err, skipped)
	}
	return keys[0]
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkResult applies Wycheproof semantics: valid must verify, invalid must not,
// acceptable may go either way (counted).
func checkResult(t *testing.T, tc wpTest, verified bool, acceptable *int) {
	t.Helper()
	switch tc.Result {
	case "valid":
		if !verified {
			t.Errorf("tcId %d (%s): valid vector rejected", tc.TcID, tc.Comment)
		}
	case "invalid":
		if verified {
			t.Errorf("tcId %d (%s, %v): invalid vector accepted", tc.TcID, tc.Comment, tc.Flags)
		}
	case "acceptable":
		*acceptable++
	default:
		t.Fatalf("tcId %d: unknown result %q", tc.TcID, tc.Result)
	}
}

func TestWycheproofRSASignature2048SHA256(t *testing.T) {
	var n, acceptable int
	for _, raw := range loadWycheproof(t, "rsa_signature_2048_sha256_test.json") {
		var g struct {
			KeyJwk json.RawMessage `json:"keyJwk"`
			Tests  []wpTest        `json:"tests"`
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		key := keyFromJWK(t, g.KeyJwk)
		pub, ok := key.Public.(*rsa.PublicKey)
		if !ok || key.Algorithm != "RS256" {
			t.Fatalf("key %T %s", key.Public, key.Algorithm)
		}
		for _, tc := range g.Tests {
			n++
			h := sha256.Sum256(unhex(t, tc.Msg))
			err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], unhex(t, tc.Sig))
			checkResult(t, tc, err == nil, &acceptable)
		}
	}
	t.Logf("%d vectors (%d acceptable)", n, acceptable)
	if n < 250 {
		t.Fatalf("only %d vectors", n)
	}
}

func TestWycheproofECDSAP256SHA256P1363(t *testing.T) {
	var n, acceptable int
	for _, raw := range loadWycheproof(t, "ecdsa_secp256r1_sha256_p1363_test.json") {
		var g struct {
			PublicKeyJwk json.RawMessage `json:"publicKeyJwk"`
			PublicKey    struct {
				Wx string `json:"wx"`
				Wy string `json:"wy"`
			} `json:"publicKey"`
			Tests []wpTest `json:"tests"`
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		if g.PublicKeyJwk == nil {
			// A few groups carry the point only as hex coordinates.
			coord := func(h string) string {
				return base64.RawURLEncoding.EncodeToString(new(big.Int).SetBytes(unhex(t, h)).FillBytes(make([]byte, 32)))
			}
			g.PublicKeyJwk = json.RawMessage(`{"kty":"EC","crv":"P-256","x":"` + coord(g.PublicKey.Wx) + `","y":"` + coord(g.PublicKey.Wy) + `"}`)
		}
		key := keyFromJWK(t, g.PublicKeyJwk)
		pub, ok := key.Public.(*ecdsa.PublicKey)
		if !ok || key.Algorithm != "ES256" {
			t.Fatalf("key %T %s", key.Public, key.Algorithm)
		}
		for _, tc := range g.Tests {
			n++
			checkResult(t, tc, verifyES256(pub, unhex(t, tc.Msg), unhex(t, tc.Sig)), &acceptable)
		}
	}
	t.Logf("%d vectors (%d acceptable)", n, acceptable)
	if n < 250 {
		t.Fatalf("only %d vectors", n)
	}
}

// verifyES256 mirrors go-jose v4 ecEncrypterVerifier.verifyPayload for ES256.
func verifyES256(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	h := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

func TestWycheproofJWS(t *testing.T) {
	type group struct {
		Comment string          `json:"comment"`
		Public  json.RawMessage `json:"public"`
		Private json.RawMessage `json:"private"`
		Tests   []wpTest        `json:"tests"`
	}
	var (
		groups     []group
		asymmetric []*keyset.Key
	)
	for _, raw := range loadWycheproof(t, "json_web_signature_test.json") {
		var g group
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
		if g.Public != nil {
			asymmetric = append(asymmetric, keyFromJWK(t, g.Public))
		}
	}
	var n, acceptable int
	for gi, g := range groups {
		t.Run(fmt.Sprintf("%d-%s", gi, g.Comment), func(t *testing.T) {
			if g.Public == nil {
				// Symmetric (HS256) group: such a key never enters a set, and no
				// token of the group verifies with any asymmetric key.
				_, _, err := keyset.ParseDocument([]byte(`{"keys":[`+string(g.Private)+`]}`), keyset.FormatJWKS)
				if !errors.Is(err, keyset.ErrNoUsableKeys) {
					t.Fatalf("symmetric key accepted into a set: %v", err)
				}
				for _, tc := range g.Tests {
					n++
					for _, k := range asymmetric {
						if _, err := k.VerifyCompact(tc.JWS); err == nil {
							t.Errorf("tcId %d (%s): HS token verified with a %s key", tc.TcID, tc.Comment, k.Algorithm)
						}
					}
				}
				return
			}
			key := keyFromJWK(t, g.Public)
			for _, tc := range g.Tests {
				n++
				_, err := key.VerifyCompact(tc.JWS)
				checkResult(t, tc, err == nil, &acceptable)
			}
		})
	}
	t.Logf("%d vectors (%d acceptable)", n, acceptable)
}
