package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/signing"
)

// TestSurvivesRotation runs Gatehouse's real handler chain (server and auth packages, the signing
// keys swapped in as a key-ring reload does) and this service side by side: a token of the first key
// is accepted; the signing key rotates (published first, signing later, the old key retired); tokens
// of the new key are accepted without restarting or configuring anything here, and so is the old
// token; a token naming an unknown key is refused.
func TestSurvivesRotation(t *testing.T) {
	var gh atomic.Pointer[http.Handler]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*gh.Load()).ServeHTTP(w, r) }))
	defer ts.Close()
	cfg, err := config.Load(nil, func(k string) string {
		return map[string]string{"GATEHOUSE_PUBLIC_URL": ts.URL, "GATEHOUSE_TOKENS_FORMAT": "jwt"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	key := func() string {
		k, err := signing.Generate(signing.EdDSA)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sec := auth.Secrets{MasterKey: "master-key-0123456789abcdef", ApplicationKey: "application-key-0123456789", SystemKey: "system-key-0123456789abcdef"}
	k1 := key()
	sec.Signing = []signing.Entry{{Secret: k1, SignsFrom: time.Now().Add(-time.Hour)}}
	a, err := auth.New(sec, auth.Options{ClockSkew: time.Minute, MaxTTL: cfg.TokenMaxTTL, Issuer: cfg.Issuer(), Audiences: []string{cfg.Issuer()}})
	if err != nil {
		t.Fatal(err)
	}
	minter := &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: cfg.TokenMaxTTL, Format: auth.FormatJWT}
	h := server.New(server.Deps{Config: cfg, Auth: a, Minter: minter, DB: nopDB{}, Metrics: metrics.New("test"),
		Logger: slog.New(slog.DiscardHandler), Version: "test"}).Handler()
	gh.Store(&h)

	ctx := context.Background()
	v, err := NewVerifier(ctx, ts.URL, ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	svc := httptest.NewServer(Handler(v))
	defer svc.Close()
	whoami := func(tok string) (int, string) {
		req, _ := http.NewRequest("GET", svc.URL+"/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	mint := func() string {
		tok, _, err := minter.Mint(auth.MintRequest{UserID: "custom:ann"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	old := mint()
	if code, body := whoami(old); code != 200 || !strings.Contains(body, `"user":"custom:ann"`) || !strings.Contains(body, `"amr":["pwd"]`) {
		t.Fatalf("first key: %d %s", code, body)
	}
	// Rotation: the new key is published ahead of signing, then takes over.
	k2 := key()
	sec.Signing = append(sec.Signing, signing.Entry{Secret: k2, Pending: true})
	if err := a.SetSecrets(sec); err != nil {
		t.Fatal(err)
	}
	sec.Signing = []signing.Entry{{Secret: k1, SignsFrom: time.Now().Add(-time.Hour), RetiredAt: time.Now()}, {Secret: k2, SignsFrom: time.Now()}}
	if err := a.SetSecrets(sec); err != nil {
		t.Fatal(err)
	}
	fresh := mint()
	if kidOf(t, fresh) == kidOf(t, old) {
		t.Fatal("the new key does not sign")
	}
	for name, tok := range map[string]string{"new key": fresh, "retired key": old} {
		if code, body := whoami(tok); code != 200 {
			t.Fatalf("%s after the rotation: %d %s", name, code, body)
		}
	}
	// A key that was never published.
	foreign, err := signing.NewSet([]signing.Entry{{Secret: key()}}, signing.Options{Issuer: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := foreign.Mint(signing.Claims{Subject: "custom:mallory", IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)})
	if code, _ := whoami(forged); code != 401 {
		t.Fatalf("unknown key: %d", code)
	}
	if code, _ := whoami(""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
}

type nopDB struct{}

func (nopDB) Ping(context.Context) error { return nil }

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	var hdr struct {
		Kid string `json:"kid"`
	}
	b, err := decodeSegment(h)
	if err != nil || json.Unmarshal(b, &hdr) != nil {
		t.Fatalf("header of %q", tok)
	}
	return hdr.Kid
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}
