package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	vecSecret  = "ZumoTestMasterKey0123456789"
	vecKeyHex  = "3897bcc3344c0dd9a0cd2f170e2f0d800ed075c19a21466b9791f2332f997bb2"
	vecClaims  = `{"exp":1893456000,"iss":"urn:microsoft:windows-azure:zumo","ver":2,"aud":"Facebook","uid":"Facebook:1234567890","urn:microsoft:credentials":"KNtCXi+yO38jVguyRDYVeyeYniex0KRNBG/S0eGSiGPC66lEgUVhK7xAyFwWIOaC"}`
	vecSigRaw  = "xbjYp7QZzmKc88CpnKVWjw6Vl9jjZAIfL3rEv_VCu94"
	vecSigNode = "16I9K4bLCkIvlIEGvts75pRtxWNWGhxLzzLG44Ksnds"
)

var vecNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return vecNow }

func vecToken(sig string) string {
	return headerSegment + "." + base64.RawURLEncoding.EncodeToString([]byte(vecClaims)) + "." + sig
}

func mustVerifier(t testing.TB, keys ...Key) *Verifier {
	t.Helper()
	v, err := NewVerifier(keys, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSigningKeyVector(t *testing.T) {
	if got := hex.EncodeToString(SigningKey(vecSecret)); got != vecKeyHex {
		t.Fatalf("signing key = %s, want %s", got, vecKeyHex)
	}
	if headerSegment != base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"0"}`)) {
		t.Fatal("header segment does not encode the original envelope")
	}
}

func TestMintIsByteCompatible(t *testing.T) {
	got, err := Mint(vecSecret, Claims{
		Exp: 1893456000, Iss: Issuer, Ver: 2, Aud: "Facebook", UID: "Facebook:1234567890",
		Extra: map[string]any{"urn:microsoft:credentials": "KNtCXi+yO38jVguyRDYVeyeYniex0KRNBG/S0eGSiGPC66lEgUVhK7xAyFwWIOaC"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := vecToken(vecSigRaw); got != want {
		t.Fatalf("minted\n %s\nwant\n %s", got, want)
	}
}

func TestVerifyVectors(t *testing.T) {
	v := mustVerifier(t, Key{Secret: vecSecret})
	for name, sig := range map[string]string{"raw digest key (Node <= 5, other backends)": vecSigRaw, "utf-8 digest key (same snippet on Node >= 6)": vecSigNode} {
		t.Run(name, func(t *testing.T) {
			c, err := v.Verify(vecToken(sig))
			if err != nil {
				t.Fatal(err)
			}
			if c.UserID() != "Facebook:1234567890" || c.Provider() != "Facebook" || c.Aud != "Facebook" || c.Exp != 1893456000 || c.Ver != 2 || c.Iss != Issuer {
				t.Fatalf("claims = %+v", c)
			}
			raw, err := c.Raw()
			if err != nil || raw["urn:microsoft:credentials"] == nil {
				t.Fatalf("raw claims = %v, %v", raw, err)
			}
		})
	}
}

func TestNode6KeyMatchesVector(t *testing.T) {
	// Recompute the Node >= 6 signature independently of Verify to pin the derivation.
	k := node6Key(SigningKey(vecSecret))
	m := hmac.New(sha256.New, k)
	signed := headerSegment + "." + base64.RawURLEncoding.EncodeToString([]byte(vecClaims))
	m.Write([]byte(signed))
	if got := base64.RawURLEncoding.EncodeToString(m.Sum(nil)); got != vecSigNode {
		t.Fatalf("node6 signature = %s, want %s", got, vecSigNode)
	}
}

// forge builds a token with an arbitrary header and claims, signed with secret (or not at all).
func forge(headerJSON, claimsJSON, secret string) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(headerJSON))
	c := base64.RawURLEncoding.EncodeToString([]byte(claimsJSON))
	if secret == "" {
		return h + "." + c + "."
	}
	return sign(SigningKey(secret), h, c)
}

func TestVerifyRejections(t *testing.T) {
	const hs = `{"alg":"HS256","typ":"JWT","kid":"0"}`
	future := "1893456000"
	now := vecNow.Unix()
	v := mustVerifier(t, Key{Secret: vecSecret})
	valid := vecToken(vecSigRaw)
	parts := strings.Split(valid, ".")
	cases := []struct {
		name  string
		tok   string
		want  error
		msgIs string
	}{
		{"empty", "", ErrEmpty, "Invalid token format. Token must not be empty."},
		{"randomgoop", "randomgoop", ErrFormat, "Invalid token format. Expected Envelope.Claims.Signature."},
		{"two parts", "a.b", ErrFormat, ""},
		{"four parts", valid + ".x", ErrFormat, ""},
		{"empty envelope", "." + parts[1] + "." + parts[2], ErrEmptyEnvelope, "Invalid token format. Envelope must not be empty."},
		{"empty claims", parts[0] + ".." + parts[2], ErrEmptyClaims, ""},
		{"empty signature", parts[0] + "." + parts[1] + ".", ErrEmptySignature, "Invalid token format. Signature must not be empty."},
		{"illegal base64 length", "a." + parts[1] + "." + parts[2], ErrBase64, "The authentication token contains illegal base64 url string."},
		{"illegal base64 char", "ab!d." + parts[1] + "." + parts[2], ErrBase64, ""},
		{"header not json", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], ErrJSON, ""},
		{"typ wrong", forge(`{"alg":"HS256","typ":"JWS"}`, `{"exp":`+future+`,"uid":"a:b"}`, vecSecret), ErrType, "The authentication token type is invalid."},
		{"alg none", forge(`{"alg":"none","typ":"JWT"}`, `{"exp":`+future+`,"uid":"a:b"}`, ""), ErrEmptySignature, ""},
		{"alg none with sig", forge(`{"alg":"none","typ":"JWT"}`, `{"exp":`+future+`,"uid":"a:b"}`, vecSecret), ErrAlg, "The authentication token alg is not supported."},
		{"alg missing", forge(`{"typ":"JWT"}`, `{"exp":`+future+`,"uid":"a:b"}`, vecSecret), ErrAlg, ""},
		{"alg RS256", forge(`{"alg":"RS256","typ":"JWT"}`, `{"exp":`+future+`,"uid":"a:b"}`, vecSecret), ErrAlg, ""},
		{"alg HS384", forge(`{"alg":"HS384","typ":"JWT"}`, `{"exp":`+future+`,"uid":"a:b"}`, vecSecret), ErrAlg, ""},
		{"alg HS512", forge(`{"alg":"HS512","typ":"JWT"}`, `{"exp":`+future+`,"uid":"a:b"}`, vecSecret), ErrAlg, ""},
		{"alg lower-case", forge(`{"alg":"hs256","typ":"JWT"}`, `{"exp":`+future+`,"uid":"a:b"}`, vecSecret), ErrAlg, ""},
		{"wrong key", forge(hs, `{"exp":`+future+`,"uid":"a:b"}`, "another-master-key"), ErrSignature, "The authentication token has an invalid signature."},
		{"tampered claims", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(vecClaims, "1234567890", "1234567891", 1))) + "." + parts[2], ErrSignature, ""},
		{"padded signature", valid + "=", ErrSignature, ""},
		{"truncated signature", valid[:len(valid)-4], ErrSignature, ""},
		{"forged expired reports signature first", forge(hs, `{"exp":1,"uid":"a:b"}`, "wrong"), ErrSignature, ""},
		{"exp missing", forge(hs, `{"uid":"a:b"}`, vecSecret), ErrNoExpiration, "The authentication token requires expiration claim."},
		{"exp zero", forge(hs, `{"exp":0,"uid":"a:b"}`, vecSecret), ErrNoExpiration, ""},
		{"exp string never", forge(hs, `{"exp":"never","uid":"a:b"}`, vecSecret), ErrNoExpiration, ""},
		{"exp bool", forge(hs, `{"exp":true,"uid":"a:b"}`, vecSecret), ErrNoExpiration, ""},
		{"exp huge", forge(hs, `{"exp":1e300,"uid":"a:b"}`, vecSecret), ErrNoExpiration, ""},
		{"expired", forge(hs, `{"exp":`+itoa(now-3600)+`,"uid":"a:b"}`, vecSecret), ErrExpired, "The authentication token has expired."},
		{"expired beyond skew", forge(hs, `{"exp":`+itoa(now-61)+`,"uid":"a:b"}`, vecSecret), ErrExpired, ""},
		{"iat in future", forge(hs, `{"exp":`+future+`,"iat":`+itoa(now+3600)+`,"uid":"a:b"}`, vecSecret), ErrIssuedAt, "The authentication token is not valid until after its IssuedAt."},
		{"nbf in future", forge(hs, `{"exp":`+future+`,"nbf":`+itoa(now+3600)+`,"uid":"a:b"}`, vecSecret), ErrNotBefore, "The authentication token is not valid until after its NotBefore."},
		{"nbf not numeric", forge(hs, `{"exp":`+future+`,"nbf":"x","uid":"a:b"}`, vecSecret), ErrNotBefore, ""},
		{"claims not json", sign(SigningKey(vecSecret), headerSegment, base64.RawURLEncoding.EncodeToString([]byte("{"))), ErrJSON, ""},
		{"claims array", sign(SigningKey(vecSecret), headerSegment, base64.RawURLEncoding.EncodeToString([]byte("[]"))), ErrJSON, ""},
		{"too long", strings.Repeat("a", MaxTokenLength+1), ErrTooLong, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.tok)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if tc.msgIs != "" && err.Error() != tc.msgIs {
				t.Fatalf("message %q, want %q", err.Error(), tc.msgIs)
			}
			var te *Error
			if !errors.As(err, &te) || te.Reason == "" {
				t.Fatalf("error %T has no reason", err)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	const hs = `{"alg":"HS256","typ":"JWT","kid":"0"}`
	now := vecNow.Unix()
	v := mustVerifier(t, Key{Secret: vecSecret})
	cases := []struct{ name, tok, uid string }{
		{"community snippet kid number", forge(`{"alg":"HS256","typ":"JWT","kid":0}`, `{"exp":`+itoa(now+60)+`,"iss":"urn:microsoft:windows-azure:zumo","ver":2,"aud":"Custom","uid":"Custom:42"}`, vecSecret), "Custom:42"},
		{"no typ", forge(`{"alg":"HS256"}`, `{"exp":`+itoa(now+60)+`,"uid":"custom:1"}`, vecSecret), "custom:1"},
		{"within skew", forge(hs, `{"exp":`+itoa(now-30)+`,"uid":"custom:1"}`, vecSecret), "custom:1"},
		{"iat within skew", forge(hs, `{"exp":`+itoa(now+60)+`,"iat":`+itoa(now+30)+`,"uid":"custom:1"}`, vecSecret), "custom:1"},
		{"id claim wins", forge(hs, `{"exp":`+itoa(now+60)+`,"uid":"Google:1","id":"7f3"}`, vecSecret), "7f3"},
		{"numeric id claim", forge(hs, `{"exp":`+itoa(now+60)+`,"uid":"Google:1","id":12}`, vecSecret), "12"},
		{"fractional exp", forge(hs, `{"exp":`+itoa(now+60)+`.5,"uid":"x"}`, vecSecret), "x"},
		{"padded claims segment", padClaims(forge(hs, `{"exp":`+itoa(now+60)+`,"uid":"x1"}`, vecSecret)), "x1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.UserID() != tc.uid {
				t.Fatalf("user id %q, want %q", c.UserID(), tc.uid)
			}
		})
	}
}

// padClaims re-signs a token whose claims segment carries '=' padding, as some snippets emitted.
func padClaims(tok string) string {
	p := strings.Split(tok, ".")
	for len(p[1])%4 != 0 {
		p[1] += "="
	}
	return sign(SigningKey(vecSecret), p[0], p[1])
}

func TestRotation(t *testing.T) {
	const oldKey, newKey = "old-master-key-aaaaaaaaaaaaaaaa", "new-master-key-bbbbbbbbbbbbbbbb"
	retired := vecNow.Add(-24 * time.Hour)
	v, err := NewVerifier([]Key{{Secret: newKey}, {Secret: oldKey, RetiredAt: retired}}, Options{Now: fixedNow, MaxTTL: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(secret string, exp time.Time) string {
		tok, err := Mint(secret, Claims{Exp: exp.Unix(), Iss: Issuer, Ver: 2, Aud: "Custom", UID: "custom:1"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// A token the old key signed before it retired still verifies until it expires.
	if _, err := v.Verify(mint(oldKey, retired.Add(29*24*time.Hour))); err != nil {
		t.Fatalf("old-key token rejected after rotation: %v", err)
	}
	// New tokens verify.
	if _, err := v.Verify(mint(newKey, vecNow.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	// The retired key cannot mint anything living past retirement + MaxTTL (+ the clock skew).
	if _, err := v.Verify(mint(oldKey, retired.Add(31*24*time.Hour))); !errors.Is(err, ErrSignature) {
		t.Fatalf("long-lived token from retired key: %v", err)
	}
	if _, err := v.Verify(mint(oldKey, retired.Add(30*24*time.Hour+61*time.Second))); !errors.Is(err, ErrSignature) {
		t.Fatalf("token from retired key living past retirement + MaxTTL + skew: %v", err)
	}
	// An instance that has not yet heard of the promotion signs with the old key for a moment after
	// RetiredAt (the promoter's clock), tokens of the full lifetime: they verify everywhere (the CI
	// failure of TestClusterKeyRotation, when such a token crossed a second boundary).
	for _, late := range []time.Duration{time.Second, 2 * time.Second, 59 * time.Second} {
		if _, err := v.Verify(mint(oldKey, retired.Add(late+30*24*time.Hour))); err != nil {
			t.Fatalf("token signed %s after the retirement by an instance not yet told: %v", late, err)
		}
	}
	// After the old key is dropped, its tokens fail.
	v2 := mustVerifier(t, Key{Secret: newKey})
	if _, err := v2.Verify(mint(oldKey, vecNow.Add(time.Hour))); !errors.Is(err, ErrSignature) {
		t.Fatalf("dropped key still verifies: %v", err)
	}
}

func TestMintValidation(t *testing.T) {
	if _, err := Mint("k", Claims{UID: "a:b"}); err == nil {
		t.Fatal("mint without exp accepted")
	}
	if _, err := Mint("k", Claims{Exp: 1}); err == nil {
		t.Fatal("mint without uid accepted")
	}
	if _, err := Mint("k", Claims{Exp: 1, UID: "a:b", Extra: map[string]any{"exp": 2}}); err == nil {
		t.Fatal("duplicate claim accepted")
	}
	tok, err := Mint("k", Claims{Exp: 2000000000, UID: "custom:<a&b>"})
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(p[1])
	if string(b) != `{"exp":2000000000,"uid":"custom:<a&b>"}` {
		t.Fatalf("claims %s", b)
	}
}

func TestNewVerifierValidation(t *testing.T) {
	if _, err := NewVerifier(nil, Options{}); err == nil {
		t.Fatal("no keys accepted")
	}
	if _, err := NewVerifier([]Key{{}}, Options{}); err == nil {
		t.Fatal("empty secret accepted")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
func BenchmarkVerifyAppToken(b *testing.B) {
	v := mustVerifier(b, Key{Secret: vecSecret})
	tok, err := Mint(vecSecret, Claims{Exp: vecNow.Add(time.Hour).Unix(), Iss: Issuer, Ver: 2, Aud: "Custom", UID: "custom:123"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAppTokenRotated(b *testing.B) {
	// Worst case: a token signed by the second of two keys.
	v := mustVerifier(b, Key{Secret: "current-key"}, Key{Secret: vecSecret, RetiredAt: vecNow})
	tok, _ := Mint(vecSecret, Claims{Exp: vecNow.Add(time.Hour).Unix(), UID: "custom:123"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMillisecondIat(t *testing.T) {
	v := mustVerifier(t, Key{Secret: vecSecret})
	ms := vecNow.UnixMilli() - 1234
	tok, err := Mint(vecSecret, Claims{Exp: vecNow.Add(time.Hour).Unix(), UID: "custom:1", IatMs: ms})
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(p[1])
	if !strings.Contains(string(b), `"iat":`+strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)) {
		t.Fatalf("claims %s", b)
	}
	c, err := v.Verify(tok)
	if err != nil || c.IatMs != ms || c.Iat != ms/1000 {
		t.Fatalf("iat %d/%d, want %d: %v", c.Iat, c.IatMs, ms, err)
	}
}

func TestAMRClaim(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v, err := NewVerifier([]Key{{Secret: "k"}}, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c := Claims{Exp: now.Unix() + 60, Iss: Issuer, Ver: 2, Aud: "custom", UID: "custom:1"}
	plain, err := Mint("k", c)
	if err != nil {
		t.Fatal(err)
	}
	c.AMR = []string{"pwd", "otp", "mfa"}
	withAMR, err := Mint("k", c)
	if err != nil {
		t.Fatal(err)
	}
	// The claim is appended after the standard ones; without it the token is unchanged.
	seg := func(tok string) string { return strings.Split(tok, ".")[1] }
	if p, _ := base64.RawURLEncoding.DecodeString(seg(withAMR)); !strings.HasSuffix(string(p), `,"amr":["pwd","otp","mfa"]}`) {
		t.Fatalf("claims %s", p)
	}
	if p, _ := base64.RawURLEncoding.DecodeString(seg(plain)); strings.Contains(string(p), "amr") {
		t.Fatalf("claims %s", p)
	}
	got, err := v.Verify(withAMR)
	if err != nil {
		t.Fatal(err)
	}
	if !got.HasAMR("mfa") || !got.HasAMR("otp") || got.HasAMR("hwk") || len(got.AMR) != 3 {
		t.Fatalf("amr %v", got.AMR)
	}
	if got, _ := v.Verify(plain); got.HasAMR("pwd") || got.AMR != nil {
		t.Fatalf("amr %v", got.AMR)
	}
	if _, err := Mint("k", Claims{Exp: 1, UID: "a:b", Extra: map[string]any{"amr": []string{"mfa"}}}); err == nil {
		t.Fatal("amr given as an extra claim accepted")
	}
	// Through the exact path (an escaped string elsewhere) the same amr comes back.
	c.Extra = map[string]any{"note": "a\"b"}
	slowTok, _ := Mint("k", c)
	if got, err := v.Verify(slowTok); err != nil || !got.HasAMR("mfa") {
		t.Fatalf("slow path amr %v %v", got, err)
	}
}
