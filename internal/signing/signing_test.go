package signing

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/token"
)

const iss = "https://api.example.com"

func newKey(t testing.TB, alg string) string {
	t.Helper()
	s, err := Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSet(t testing.TB, entries ...Entry) *Set {
	t.Helper()
	s, err := NewSet(entries, Options{Issuer: iss, Audiences: []string{"api://orders", iss}, Keep: 2 * time.Hour, ClockSkew: time.Minute, MaxTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mint(t testing.TB, s *Set, now time.Time) string {
	t.Helper()
	tok, err := s.Mint(Claims{Subject: "Custom:42", IDP: "Custom", IssuedAt: now, Expiry: now.Add(time.Hour), AMR: []string{"pwd"},
		Extra: map[string]any{"id": "42", "iss": "forged"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestMintVerify(t *testing.T) {
	now := time.Now()
	for _, alg := range Algorithms() {
		t.Run(alg, func(t *testing.T) {
			s := newSet(t, Entry{Secret: newKey(t, alg)})
			tok := mint(t, s, now)
			jws, err := jose.ParseSignedCompact(tok, algorithms)
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Protected
			if h.KeyID != s.keys[0].kid || h.Algorithm != alg || h.ExtraHeaders["typ"] != "JWT" {
				t.Fatalf("header %+v", h)
			}
			c, err := s.Verify(tok, now)
			if err != nil {
				t.Fatal(err)
			}
			if c.UserID() != "42" || c.UID != "Custom:42" || c.Aud != "Custom" || c.Iss != iss || c.IatMs != now.UnixMilli() {
				t.Fatalf("claims %+v", c)
			}
			raw, _ := c.Raw()
			for _, k := range []string{"sub", "aud", "exp", "iat", "jti", "amr", "ver"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("claim %s missing: %v", k, raw)
				}
			}
			if got := raw["amr"].([]any); len(got) != 1 || got[0] != "pwd" {
				t.Errorf("amr %v", raw["amr"])
			}
			if _, err := s.Verify(tok, now.Add(time.Hour+time.Minute)); !errors.Is(err, token.ErrExpired) {
				t.Errorf("expired token: %v", err)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Now()
	a := newSet(t, Entry{Secret: newKey(t, ES256)})
	b := newSet(t, Entry{Secret: newKey(t, ES256)})
	good := mint(t, a, now)
	other, _ := NewSet([]Entry{{Secret: a.keys[0].Secret}}, Options{Issuer: "https://evil.example", Audiences: []string{"api://orders"}})
	foreignIss := mint(t, other, now)
	otherAud, _ := NewSet([]Entry{{Secret: a.keys[0].Secret}}, Options{Issuer: iss, Audiences: []string{"api://billing"}})
	foreignAud := mint(t, otherAud, now)
	parts := strings.Split(good, ".")
	// The same key used with another algorithm (an HS256 token keyed by the public key's bytes).
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + a.keys[0].kid + `"}`))
	algSwap := hdr + "." + parts[1] + "." + parts[2]
	noneHdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + a.keys[0].kid + `"}`))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+iss+`","sub":"Custom:1","aud":"`+iss+`","exp":9999999999,"iat":1}`)) + "." + parts[2]
	edKey := newSet(t, Entry{Secret: newKey(t, EdDSA)})
	edHdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"` + a.keys[0].kid + `"}`))
	edSig := strings.Split(mint(t, edKey, now), ".")[2]
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"unknown kid":   {mint(t, b, now), token.ErrUnknownKey},
		"issuer":        {foreignIss, token.ErrIssuer},
		"audience":      {foreignAud, token.ErrAudience},
		"alg swap":      {algSwap, token.ErrAlg},
		"alg none":      {noneHdr + "." + parts[1] + ".", token.ErrAlg},
		"alg mismatch":  {edHdr + "." + parts[1] + "." + edSig, token.ErrAlg},
		"tampered":      {tampered, token.ErrSignature},
		"empty":         {"", token.ErrEmpty},
		"two parts":     {parts[0] + "." + parts[1], token.ErrFormat},
		"too long":      {strings.Repeat("a", token.MaxTokenLength+1), token.ErrTooLong},
		"not yet":       {mint(t, a, now.Add(10*time.Minute)), token.ErrIssuedAt},
		"bad signature": {parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), token.ErrSignature},
	} {
		if _, err := a.Verify(tc.tok, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func TestScheduleAndRetirement(t *testing.T) {
	t0 := time.Now()
	old, next := newKey(t, ES256), newKey(t, EdDSA)
	// keys.json's schedule: next signs from t0+10m, old retires then.
	s := newSet(t, Entry{Secret: old, SignsFrom: t0.Add(-time.Hour)}, Entry{Secret: next, SignsFrom: t0.Add(10 * time.Minute)})
	tokOld := mint(t, s, t0)
	if kid := kidOf(t, tokOld); kid != s.keys[0].kid {
		t.Fatal("the old key should sign before the new one's time")
	}
	body, _ := s.JWKS(t0)
	if n := countKeys(t, body); n != 2 {
		t.Fatalf("both keys are published ahead of signing, got %d", n)
	}
	t1 := t0.Add(11 * time.Minute)
	tokNew := mint(t, s, t1)
	if kid := kidOf(t, tokNew); kid != s.keys[1].kid {
		t.Fatal("the new key should sign after its time")
	}
	if _, err := s.Verify(tokOld, t1); err != nil {
		t.Fatalf("a token of the retired key verifies until it expires: %v", err)
	}
	// A token the retired key signed after its retirement is refused (its key leaked).
	late, _ := NewSet([]Entry{{Secret: old}}, s.opt)
	t3 := t0.Add(20 * time.Minute)
	if _, err := s.Verify(mint(t, late, t3), t3); !errors.Is(err, token.ErrRetiredKey) {
		t.Fatalf("signed after retirement: %v", err)
	}
	// After Keep the retired key leaves the JWKS and its tokens are refused by kid.
	t2 := t0.Add(10*time.Minute + s.opt.Keep + time.Second)
	body, _ = s.JWKS(t2)
	if n := countKeys(t, body); n != 1 {
		t.Fatalf("retired key still published after keep: %d keys", n)
	}
	if _, err := s.Verify(tokOld, t2); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("removed kid: %v", err)
	}
	// A pending key is published but never signs.
	p := newSet(t, Entry{Secret: old}, Entry{Secret: next, Pending: true})
	if kidOf(t, mint(t, p, t0)) != kidByAlg(p, ES256) {
		t.Fatal("a pending key signed")
	}
	if only := newSet(t, Entry{Secret: next, Pending: true}); only != nil {
		if _, err := only.Mint(Claims{Subject: "x:1", IssuedAt: t0, Expiry: t0.Add(time.Hour)}); !errors.Is(err, ErrNoSigningKey) {
			t.Fatalf("pending-only set minted: %v", err)
		}
	}
}

func kidByAlg(s *Set, alg string) string {
	for _, k := range s.keys {
		if k.alg == alg {
			return k.kid
		}
	}
	return ""
}

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, algorithms)
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Protected.KeyID
}

func countKeys(t testing.TB, body []byte) int {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatal("a private key was published")
		}
	}
	return len(set.Keys)
}

// TestGoOIDC checks the documents and tokens with the independent verifier other services use.
func TestGoOIDC(t *testing.T) {
	var set *Set
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc(DiscoveryPath, func(w http.ResponseWriter, r *http.Request) { w.Write(set.Discovery()) })
	mux.HandleFunc(JWKSPath, func(w http.ResponseWriter, r *http.Request) { b, _ := set.JWKS(time.Now()); w.Write(b) })
	s, err := NewSet([]Entry{{Secret: newKey(t, ES256)}, {Secret: newKey(t, EdDSA), Pending: true}}, Options{Issuer: srv.URL, Keep: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	set = s
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	v := p.Verifier(&oidc.Config{ClientID: srv.URL, SupportedSigningAlgs: Algorithms()})
	now := time.Now()
	tok := mint(t, set, now)
	idt, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
		UID string   `json:"uid"`
	}
	if err := idt.Claims(&c); err != nil || idt.Subject != "Custom:42" || c.UID != "Custom:42" || len(c.AMR) != 1 {
		t.Fatalf("claims %+v %v", c, err)
	}
}
