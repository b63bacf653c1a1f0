package signing

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and whatever it accepts must be
// unexpired, for this issuer, and signed by the set's key (the seed corpus has real tokens, tokens
// with swapped algorithms, none, foreign kids and malformed segments).
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	es, ed := newKey(f, ES256), newKey(f, EdDSA)
	s := newSet(f, Entry{Secret: es}, Entry{Secret: ed, Pending: true})
	good := mint(f, s, now)
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(b64([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".")
	f.Add(b64([]byte(`{"alg":"HS256","kid":"`+s.keys[0].kid+`"}`)) + "." + parts[1] + "." + parts[2])
	f.Add(b64([]byte(`{"alg":"EdDSA","kid":"`+s.keys[0].kid+`"}`)) + "." + parts[1] + "." + parts[2])
	f.Add(b64([]byte(`{"alg":"ES256","kid":"x","crit":["exp"]}`)) + "." + parts[1] + "." + parts[2])
	f.Add(parts[0] + "." + b64([]byte(`{"iss":"`+iss+`","aud":["`+iss+`"],"sub":"a","exp":1e300,"iat":-1}`)) + "." + parts[2])
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.Verify(tok, now)
		if err != nil {
			return
		}
		if c.Exp+60 < now.Unix() || c.Iss != iss || c.UID == "" {
			t.Fatalf("accepted %q: %+v", tok, c)
		}
	})
}
