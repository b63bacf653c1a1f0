package account

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzPasskeyFinishBody feeds arbitrary bodies to the decoding of a passkey answer (ours: strict
// JSON, required members, bounds) and, when it passes, to go-webauthn's parsers as the handlers do.
// Nothing may panic, and what passes has a challenge id and an object credential.
func FuzzPasskeyFinishBody(f *testing.F) {
	for _, s := range []string{
		`{"challengeId":"abc","credential":{"id":"x","rawId":"x","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}}`,
		`{"challengeId":"abc","name":"Laptop","credential":{"id":"x","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}}`,
		`{"challengeId":"abc","credential":null}`,
		`{"challengeId":"abc","challengeId":"def","credential":{}}`,
		`{"challengeId":"","credential":{}}`,
		`{"challengeId":"a","credential":[1]}`,
		`[]`, ``, `{"challengeId":"a\ud800","credential":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/login/custom/passkeys/login/finish", bytes.NewReader(body))
		b, err := readPasskeyFinish(r)
		if err != nil {
			return
		}
		if b.ChallengeID == "" || len(b.Credential) == 0 || b.Credential[0] != '{' || len(b.Credential) > maxCredentialJSON {
			t.Fatalf("accepted %q", body)
		}
		_, _ = parseAssertion(b.Credential)
		_, _ = parseAttestation(b.Credential)
	})
}
