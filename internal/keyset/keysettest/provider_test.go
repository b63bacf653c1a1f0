package keysettest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/keyset/keysettest"
)

func TestDiscoveryAndHeaders(t *testing.T) {
	p := keysettest.NewProvider(t, keysettest.WithIssuer("https://accounts.google.com"), keysettest.WithMaxAge(time.Hour))
	resp, err := p.Client().Get(p.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc.Issuer != "https://accounts.google.com" || doc.JWKSURI != p.JWKSURL() {
		t.Fatalf("discovery = %+v, %v", doc, err)
	}
	p.SetAge(10 * time.Minute)
	req, _ := http.NewRequest(http.MethodGet, p.JWKSURL(), nil)
	req.Header.Set("Cache-Control", "no-cache")
	resp, err = p.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc, age := resp.Header.Get("Cache-Control"), resp.Header.Get("Age"); cc != "public, max-age=3600, must-revalidate, no-transform" || age != "600" {
		t.Fatalf("Cache-Control %q Age %q", cc, age)
	}
	if p.Fetches() != 1 || p.ForcedFetches() != 1 {
		t.Fatalf("fetches %d forced %d", p.Fetches(), p.ForcedFetches())
	}
}

func TestRotationSigning(t *testing.T) {
	p := keysettest.NewProvider(t)
	k1 := p.Current()
	k2 := p.AddKey(jose.ES256)
	if p.Current() != k1 || len(p.Published()) != 2 {
		t.Fatal("AddKey must publish without signing")
	}
	p.Use(k2)
	tok := p.Sign(p.Claims("s", "a"))
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if jws.Signatures[0].Header.KeyID != k2.ID {
		t.Fatalf("kid %q, want %q", jws.Signatures[0].Header.KeyID, k2.ID)
	}
	if _, err := jws.Verify(k2.Private.Public()); err != nil {
		t.Fatal(err)
	}
	p.Remove(k1)
	if len(p.Published()) != 1 {
		t.Fatal("Remove did not unpublish")
	}
}

func TestClock(t *testing.T) {
	c := keysettest.NewClock(time.Unix(0, 0))
	ch := c.After(time.Minute)
	if err := c.WaitForWaiters(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(59 * time.Second)
	select {
	case <-ch:
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Second)
	if got := <-ch; !got.Equal(time.Unix(60, 0)) {
		t.Fatalf("fired at %v", got)
	}
	if c.Waiters() != 0 {
		t.Fatal("waiter not removed")
	}
}
