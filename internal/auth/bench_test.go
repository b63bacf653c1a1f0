package auth

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/signing"
)

// BenchmarkIdentify measures token verification as requests see it (Authenticator.Identify): the
// HS256 app token next to ES256 and EdDSA tokens, with signing keys installed in every case (so the
// app token also pays the format test).
func BenchmarkIdentify(b *testing.B) {
	now := time.Now()
	for _, format := range []string{"zumo", signing.ES256, signing.EdDSA} {
		b.Run(format, func(b *testing.B) {
			alg := format
			if format == "zumo" {
				alg = signing.ES256
			}
			key, err := signing.Generate(alg)
			if err != nil {
				b.Fatal(err)
			}
			s := secrets
			s.Signing = []signing.Entry{{Secret: key}}
			a, err := New(s, Options{Now: func() time.Time { return now }, MaxTTL: 24 * time.Hour, ClockSkew: time.Minute,
				Issuer: "https://api.example.com"})
			if err != nil {
				b.Fatal(err)
			}
			m := &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, Format: FormatJWT}
			if format == "zumo" {
				m.Format = FormatZumo
			}
			tok, _, err := m.Mint(MintRequest{UserID: "custom:123"})
			if err != nil {
				b.Fatal(err)
			}
			cr := Credentials{Token: tok, HasToken: true}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Identify(cr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
