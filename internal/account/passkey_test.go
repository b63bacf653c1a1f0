package account_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// softKey is a software WebAuthn authenticator (ES256, "none" attestation, resident key, user
// verification): what a platform authenticator sends, built by hand so that tests can also send
// what a real one never would (another origin or relying party, a counter going backwards).
type softKey struct {
	priv   *ecdsa.PrivateKey
	id     []byte
	count  uint32
	user   []byte
	origin string // clientData origin
	rpID   string // the relying party whose hash goes in authenticatorData
}

var b64u = base64.RawURLEncoding

func newSoftKey(t testing.TB, origin, rpID string) *softKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &softKey{priv: priv, id: id, origin: origin, rpID: rpID}
}

func (k *softKey) authData(attested bool) []byte {
	rp := sha256.Sum256([]byte(k.rpID))
	flags := byte(0x01 | 0x04) // user present, user verified
	if attested {
		flags |= 0x40
	}
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID
		out = binary.BigEndian.AppendUint16(out, uint16(len(k.id)))
		out = append(out, k.id...)
		x, y := k.priv.X.FillBytes(make([]byte, 32)), k.priv.Y.FillBytes(make([]byte, 32))
		cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
		if err != nil {
			panic(err)
		}
		out = append(out, cose...)
	}
	return out
}

func (k *softKey) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	return b
}

// create answers a registration's publicKey options.
func (k *softKey) create(t testing.TB, opts map[string]any) map[string]any {
	t.Helper()
	user := opts["user"].(map[string]any)
	uid, err := b64u.DecodeString(user["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	k.user = uid
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(true)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64u.EncodeToString(k.clientData("webauthn.create", opts["challenge"].(string))),
			"attestationObject": b64u.EncodeToString(att), "transports": []string{"internal"}}}
}

// get answers a sign-in's publicKey options, with the next counter value.
func (k *softKey) get(t testing.TB, opts map[string]any) map[string]any {
	t.Helper()
	k.count++
	ad := k.authData(false)
	cd := k.clientData("webauthn.get", opts["challenge"].(string))
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64u.EncodeToString(cd), "authenticatorData": b64u.EncodeToString(ad),
			"signature": b64u.EncodeToString(sig), "userHandle": b64u.EncodeToString(k.user)}}
}

const rpOrigin = "https://gatehouse.example"

// begin starts a ceremony and returns its id, options and the browser's nonce cookie.
func (e *env) begin(path, body, cookie string, hdr ...string) (string, map[string]any, string) {
	e.t.Helper()
	if cookie != "" {
		hdr = append(hdr, "Cookie", "gatehouse_nonce="+cookie)
	}
	r := e.do("POST", path, body, hdr...)
	if r.status != 200 {
		e.t.Fatalf("begin %s: %d %s", path, r.status, r.body)
	}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "gatehouse_nonce" {
			cookie = c.Value
			if !c.Secure || !c.HttpOnly {
				e.t.Fatalf("nonce cookie %+v", c)
			}
		}
	}
	return r.json["challengeId"].(string), r.json["publicKey"].(map[string]any), cookie
}

func finish(id, mfaToken string, cred map[string]any) string {
	b := map[string]any{"challengeId": id, "credential": cred}
	if mfaToken != "" {
		b["mfaToken"] = mfaToken
	}
	return js(b)
}

// TestPasskeysAcrossInstances runs every ceremony begun on one instance and finished on another
// (two services on one database, as a cluster), and refuses what an attacker would send.
func TestPasskeysAcrossInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := newEnv(t, db, envOpt{publicURL: rpOrigin})
		b := newEnv(t, db, envOpt{publicURL: rpOrigin})
		const email, pw = "kai@example.com", "correct horse battery"
		tok := a.signUp(email, pw)
		key := newSoftKey(t, rpOrigin, "gatehouse.example")

		// Register: begun on a, finished on b.
		id, opts, nonce := a.begin("/.auth/login/custom/passkeys/register", "", "", "X-ZUMO-AUTH", tok)
		if opts["rp"].(map[string]any)["id"] != "gatehouse.example" || opts["authenticatorSelection"].(map[string]any)["residentKey"] != "required" {
			t.Fatalf("options %v", opts)
		}
		r := b.do("POST", "/.auth/login/custom/passkeys/register/finish", js(map[string]any{"challengeId": id, "name": "Yubi", "credential": key.create(t, opts)}),
			"X-ZUMO-AUTH", tok, "Cookie", "gatehouse_nonce="+nonce)
		if r.status != http.StatusCreated || r.json["name"] != "Yubi" || len(r.json["recoveryCodes"].([]any)) != 10 {
			t.Fatalf("register finish: %d %s", r.status, r.body)
		}

		// Passwordless: begun on b, finished on a.
		id, opts, nonce = b.begin("/login/custom/passkeys/login", "", "")
		r = a.do("POST", "/login/custom/passkeys/login/finish", finish(id, "", key.get(t, opts)), "Cookie", "gatehouse_nonce="+nonce)
		if r.status != 200 || !slices.Equal(a.amr(r.json["authenticationToken"].(string)), []string{"hwk", "mfa"}) {
			t.Fatalf("passwordless: %d %s", r.status, r.body)
		}
		mfaTok := r.json["authenticationToken"].(string)

		// Second factor after the password: challenge on a, ceremony on b, finish on a.
		r = a.do("POST", "/login/custom", js(map[string]string{"email": email, "password": pw}))
		if r.json["mfaRequired"] != true {
			t.Fatalf("password login: %s", r.body)
		}
		mfa := r.json["mfaToken"].(string)
		id, opts, nonce = b.begin("/login/custom/passkeys/login", js(map[string]string{"mfaToken": mfa}), "")
		if len(opts["allowCredentials"].([]any)) != 1 {
			t.Fatalf("allowCredentials %v", opts["allowCredentials"])
		}
		r = a.do("POST", "/login/custom/passkeys/login/finish", finish(id, mfa, key.get(t, opts)), "Cookie", "gatehouse_nonce="+nonce)
		if r.status != 200 || !slices.Equal(a.amr(r.json["authenticationToken"].(string)), []string{"pwd", "hwk", "mfa"}) {
			t.Fatalf("second factor: %d %s", r.status, r.body)
		}

		refused := func(what, want string, r resp) {
			t.Helper()
			if r.status != http.StatusUnauthorized || !strings.Contains(r.body, want) {
				t.Fatalf("%s: %d %s", what, r.status, r.body)
			}
		}
		try := func(k *softKey, mutate func(map[string]any)) resp {
			t.Helper()
			id, opts, nonce := a.begin("/login/custom/passkeys/login", "", "")
			cred := k.get(t, opts)
			if mutate != nil {
				mutate(cred)
			}
			return b.do("POST", "/login/custom/passkeys/login/finish", finish(id, "", cred), "Cookie", "gatehouse_nonce="+nonce)
		}
		// Another origin, another relying party.
		evil := *key
		evil.origin = "https://evil.example"
		refused("other origin", "origin", try(&evil, nil))
		evil = *key
		evil.rpID = "evil.example"
		refused("other relying party", "RP", try(&evil, nil))
		// A counter going backwards (a clone of the key).
		clone := *key
		clone.count = 1
		refused("counter", "counter", try(&clone, nil))
		key.count = clone.count + 10
		// A challenge answered from another browser, or stale, or twice.
		id, opts, _ = a.begin("/login/custom/passkeys/login", "", "")
		refused("foreign browser", "another browser", b.do("POST", "/login/custom/passkeys/login/finish", finish(id, "", key.get(t, opts)), "Cookie", "gatehouse_nonce="+strings.Repeat("B", 43)))
		id, opts, nonce = a.begin("/login/custom/passkeys/login", "", "")
		a.clock.Advance(3 * time.Minute)
		b.clock.Advance(3 * time.Minute)
		refused("stale", "expired", b.do("POST", "/login/custom/passkeys/login/finish", finish(id, "", key.get(t, opts)), "Cookie", "gatehouse_nonce="+nonce))
		id, opts, nonce = a.begin("/login/custom/passkeys/login", "", "")
		cred := key.get(t, opts)
		if r := b.do("POST", "/login/custom/passkeys/login/finish", finish(id, "", cred), "Cookie", "gatehouse_nonce="+nonce); r.status != 200 {
			t.Fatalf("after the refusals: %d %s", r.status, r.body)
		}
		refused("replay", "already used", a.do("POST", "/login/custom/passkeys/login/finish", finish(id, "", cred), "Cookie", "gatehouse_nonce="+nonce))
		// A registration challenge cannot be answered as a sign-in.
		id, opts, nonce = a.begin("/login/custom/passkeys/register", "", "", "X-ZUMO-AUTH", mfaTok)
		refused("wrong ceremony", "challenge", b.do("POST", "/login/custom/passkeys/login/finish", finish(id, "", key.get(t, opts)), "Cookie", "gatehouse_nonce="+nonce))

		// Every refusal counts: a client that keeps sending bad assertions is throttled.
		var last resp
		for range 30 {
			if last = try(&evil, nil); last.status == http.StatusTooManyRequests {
				break
			}
		}
		if last.status != http.StatusTooManyRequests {
			t.Fatalf("bad assertions never throttled: %d %s", last.status, last.body)
		}

		// Removal (multi-factor token), then the key signs in no more.
		a.clock.Advance(16 * time.Minute) // the throttle's longest block
		b.clock.Advance(16 * time.Minute)
		if r := b.do("DELETE", "/login/custom/passkeys/"+b64u.EncodeToString(key.id), "", "X-ZUMO-AUTH", tok); r.status != http.StatusForbidden {
			t.Fatalf("removal with a password-only token: %d %s", r.status, r.body)
		}
		if r := b.do("DELETE", "/login/custom/passkeys/"+b64u.EncodeToString(key.id), "", "X-ZUMO-AUTH", mfaTok); r.status != http.StatusNoContent {
			t.Fatalf("removal: %d %s", r.status, r.body)
		}
		refused("removed key", "Unable to find the credential", try(key, nil))
		a.clock.Advance(16 * time.Minute)
		if r := a.do("POST", "/login/custom", js(map[string]string{"email": email, "password": pw})); r.json["authenticationToken"] == nil {
			t.Fatalf("password login without second factors: %s", r.body)
		}
	})
}

// BenchmarkPasskeySignIn is a passwordless sign-in as a client runs it: two round trips (the
// challenge, then the signed answer) over HTTP to one instance on SQLite, the assertion verified
// by go-webauthn, the counter advanced by one conditional UPDATE, a token minted.
func BenchmarkPasskeySignIn(b *testing.B) {
	db := storetest.Open(b, storetest.SQLiteURL(b))
	e := newEnv(b, db, envOpt{publicURL: rpOrigin})
	tok := e.signUp("bench@example.com", "correct horse battery")
	key := newSoftKey(b, rpOrigin, "gatehouse.example")
	id, opts, nonce := e.begin("/login/custom/passkeys/register", "", "", "X-ZUMO-AUTH", tok)
	if r := e.do("POST", "/login/custom/passkeys/register/finish", js(map[string]any{"challengeId": id, "credential": key.create(b, opts)}),
		"X-ZUMO-AUTH", tok, "Cookie", "gatehouse_nonce="+nonce); r.status != http.StatusCreated {
		b.Fatalf("register: %d %s", r.status, r.body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%1000 == 999 {
			e.clock.Advance(time.Hour) // past the per-address challenge limit (Rules.Ceremony)
		}
		id, opts, nonce := e.begin("/login/custom/passkeys/login", "", nonce)
		r := e.do("POST", "/login/custom/passkeys/login/finish", finish(id, "", key.get(b, opts)), "Cookie", "gatehouse_nonce="+nonce)
		if r.status != 200 {
			b.Fatalf("sign-in: %d %s", r.status, r.body)
		}
	}
	b.ReportMetric(2, "round-trips/op")
}
