package token

import (
	"encoding/base64"
	"slices"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to the verifier: it must never panic, and whatever it accepts
// must be a token whose signature our key produced.
func FuzzVerify(f *testing.F) {
	f.Add(vecToken(vecSigRaw))
	f.Add(vecToken(vecSigNode))
	f.Add("")
	f.Add("randomgoop")
	f.Add("a.b.c")
	f.Add(forge(`{"alg":"none"}`, `{"exp":1}`, ""))
	f.Add(forge(`{"alg":"HS256","typ":"JWT"}`, `{"exp":"never","uid":"a"}`, vecSecret))
	v, err := NewVerifier([]Key{{Secret: vecSecret}}, Options{Now: func() time.Time { return vecNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err != nil {
			return
		}
		if c.Exp+60 < vecNow.Unix() {
			t.Fatalf("accepted expired token %q", tok)
		}
	})
}

// FuzzClaims checks that the allocation-free claims scanner agrees with the encoding/json path on
// every payload it claims to understand.
func FuzzClaims(f *testing.F) {
	f.Add([]byte(vecClaims))
	f.Add([]byte(`{"exp":1,"uid":"a","id":"b","aud":"c","iss":"d","ver":2,"iat":3,"nbf":4}`))
	f.Add([]byte(`{"exp":1e3,"x":true,"y":null,"z":-0.5}`))
	f.Add([]byte(`{"exp":1,"exp":2}`))
	f.Add([]byte(`{"exp":1,"uid":"\u0041"}`))
	f.Add([]byte(` { } `))
	f.Add([]byte(`{"exp":1,"uid":"a","amr":["pwd","otp","mfa"]}`))
	f.Add([]byte(`{"exp":1,"amr":[ ]}`))
	f.Add([]byte(`{"exp":1,"amr":["a",1]}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		fast, ok := scanFlatClaims(payload)
		if !ok {
			return
		}
		slow, err := parseClaimsSlow(payload)
		if err != nil {
			if fast.Exp > 0 {
				t.Fatalf("scanner accepted %q that encoding/json refuses: %v", payload, err)
			}
			return
		}
		if fast.Exp != slow.Exp || fast.Iat != slow.Iat || fast.Nbf != slow.Nbf || fast.Ver != slow.Ver ||
			fast.Iss != slow.Iss || fast.IatMs != slow.IatMs || fast.Aud != slow.Aud || fast.UID != slow.UID || fast.ID != slow.ID ||
			!slices.Equal(fast.AMR, slow.AMR) {
			t.Fatalf("scanner %+v != json %+v for %q", fast, slow, payload)
		}
	})
}

var _ = base64.RawURLEncoding
