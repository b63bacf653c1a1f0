// Package token issues and verifies Gatehouse app tokens: the Zumo JWT of Azure Mobile Services
// (spec zumo-protocol.md §2.3–§2.6), byte-compatible with tokens minted by the original runtime and by
// the classic "zumoJwt" custom-auth snippets.
//
// Wire format kept: HS256 over base64url segments, signing key = SHA-256(masterKey + "JWTSig") used as
// the raw 32-byte HMAC key, header {"alg":"HS256","typ":"JWT","kid":"0"}, claims exp, iss, ver, aud, uid.
//
// Behaviour fixed (spec §7.1 items 5 and 6): the signature is checked, in constant time, before any
// claim is trusted; only HS256 is accepted; a numeric exp is required; one configurable clock skew
// applies to exp, nbf and iat; previous master keys keep verifying the tokens they signed so rotation
// logs nobody out.
//
// The HMAC is done with crypto/hmac and the JSON with encoding/json. We do not use a JWT library here
// because the Zumo envelope is fixed byte-for-byte and its dual key derivation (raw digest and the
// UTF-8-mangled digest produced by the same snippet on Node ≥ 6) is not something a library models.
package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Issuer is the iss claim the original runtime put in every token.
const Issuer = "urn:microsoft:windows-azure:zumo"

// headerSegment is base64url({"alg":"HS256","typ":"JWT","kid":"0"}), the envelope of every issued token.
const headerSegment = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjAifQ"

// MaxTokenLength bounds the token we are willing to parse. Real tokens are a few hundred bytes; the
// bound keeps a hostile header from costing us more than a small, fixed amount of work.
const MaxTokenLength = 16 << 10

// SigningKey derives the HMAC key from a secret as the original did: SHA-256(secret + "JWTSig"),
// used as raw bytes.
func SigningKey(secret string) []byte {
	sum := sha256.Sum256([]byte(secret + "JWTSig"))
	return sum[:]
}

// node6Key is the key the same snippet produces on Node ≥ 6, where the digest, handed to createHmac as
// a "binary" (Latin-1) string, is UTF-8 encoded: each byte ≥ 0x80 becomes two bytes.
func node6Key(raw []byte) []byte {
	out := make([]byte, 0, 2*len(raw))
	for _, b := range raw {
		if b < 0x80 {
			out = append(out, b)
			continue
		}
		out = append(out, 0xC0|b>>6, 0x80|b&0x3F)
	}
	return out
}

// Claims are the claims Gatehouse reads from and writes into an app token.
type Claims struct {
	Exp int64  // seconds since the epoch; required
	Iss string // urn:microsoft:windows-azure:zumo for tokens we issue; not checked
	Ver int    // 2 for tokens we issue; not checked
	Aud string // provider display name (Facebook, Google, Custom, ...); not checked
	UID string // "<Provider>:<id>"
	ID  string // optional "id" claim (users feature of the original); takes precedence as user id
	Iat int64  // 0 when absent
	// IatMs is iat in milliseconds: tokens we mint carry a fractional iat (seconds with milliseconds)
	// so that "revoke everything issued before now" separates tokens minted in the same second.
	IatMs int64
	Nbf   int64 // 0 when absent
	// AMR is the authentication methods reference (RFC 8176 values such as "pwd", "otp", "hwk",
	// "mfa"): written as "amr" after the standard claims when set, read back from verified tokens.
	// Tokens without it are byte-for-byte what they were before the claim existed.
	AMR []string

	// Extra holds further claims to issue, in addition to the ones above (Mint only).
	Extra map[string]any

	// payload is the decoded claims JSON of a verified token, for callers that want every claim.
	payload string
}

// UserID is the request user id as the original computed it: claim id if present, else uid.
func (c *Claims) UserID() string {
	if c.ID != "" {
		return c.ID
	}
	return c.UID
}

// Provider is the text of uid before the first colon (the whole uid when there is none).
func (c *Claims) Provider() string {
	p, _, _ := strings.Cut(c.UserID(), ":")
	return p
}

// Raw decodes every claim of a verified token into a map (numbers as json.Number).
func (c *Claims) Raw() (map[string]any, error) {
	m := map[string]any{}
	if len(c.payload) == 0 {
		return m, nil
	}
	dec := json.NewDecoder(strings.NewReader(c.payload))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("token: decode claims: %w", err)
	}
	return m, nil
}

// Mint signs claims with the signing key derived from secret and returns the compact token. The claims
// object is written in the original's key order (exp, iss, ver, aud, uid, then id and extras) with no
// HTML escaping, as JSON.stringify would.
func Mint(secret string, c Claims) (string, error) {
	if c.Exp <= 0 {
		return "", errors.New("token: exp is required")
	}
	if c.UID == "" && c.ID == "" {
		return "", errors.New("token: uid is required")
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	field := func(name string, v any) error {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		if err := writeJSON(&buf, name); err != nil {
			return err
		}
		buf.WriteByte(':')
		return writeJSON(&buf, v)
	}
	fields := []struct {
		name string
		v    any
		skip bool
	}{
		{"exp", c.Exp, false},
		{"iss", c.Iss, c.Iss == ""},
		{"ver", c.Ver, c.Ver == 0},
		{"aud", c.Aud, c.Aud == ""},
		{"uid", c.UID, c.UID == ""},
		{"id", c.ID, c.ID == ""},
		{"iat", iatValue(c), c.Iat == 0 && c.IatMs == 0},
		{"nbf", c.Nbf, c.Nbf == 0},
		{"amr", c.AMR, len(c.AMR) == 0},
	}
	for _, f := range fields {
		if f.skip {
			continue
		}
		if err := field(f.name, f.v); err != nil {
			return "", err
		}
	}
	for _, k := range sortedKeys(c.Extra) {
		switch k {
		case "exp", "iss", "ver", "aud", "uid", "id", "iat", "nbf", "amr":
			return "", fmt.Errorf("token: extra claim %q duplicates a standard claim", k)
		}
		if err := field(k, c.Extra[k]); err != nil {
			return "", err
		}
	}
	buf.WriteByte('}')
	return sign(SigningKey(secret), headerSegment, base64.RawURLEncoding.EncodeToString(buf.Bytes())), nil
}

// iatValue writes iat as whole seconds, or as seconds with milliseconds when IatMs is set.
func iatValue(c Claims) any {
	if c.IatMs != 0 {
		return json.Number(strconv.FormatFloat(float64(c.IatMs)/1000, 'f', -1, 64))
	}
	return c.Iat
}

func sign(key []byte, header, claims string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(header))
	m.Write([]byte{'.'})
	m.Write([]byte(claims))
	return header + "." + claims + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func writeJSON(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("token: encode claim: %w", err)
	}
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
	return nil
}

// Key is one secret the verifier accepts.
type Key struct {
	Secret string
	// RetiredAt is zero for the current key. For a previous key it is when it stopped signing; tokens
	// it verifies must expire no later than RetiredAt + the verifier's MaxTTL + ClockSkew, so a leaked
	// retired key cannot mint long-lived tokens.
	RetiredAt time.Time
}

// Options tune a Verifier.
type Options struct {
	// ClockSkew is allowed on exp, nbf and iat. Default 60s.
	ClockSkew time.Duration
	// MaxTTL is the longest token lifetime Gatehouse issues; it bounds what a retired key may still
	// verify. Default 30 days (the original's login token lifetime).
	MaxTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

type verifyKey struct {
	notAfter int64 // max exp accepted (unix seconds); 0 = unbounded (current key)
	raw      *macPool
	node6    *macPool
}

// macPool reuses keyed HMAC states: hmac.New allocates and hashes the key every time.
type macPool struct{ p sync.Pool }

func newMacPool(key []byte) *macPool {
	k := append([]byte(nil), key...)
	mp := &macPool{}
	mp.p.New = func() any { return hmac.New(sha256.New, k) }
	return mp
}

// Verifier verifies app tokens against the current secret and any previous ones. It is safe for
// concurrent use and immutable; build a new one when keys change.
type Verifier struct {
	keys []verifyKey
	skew int64
	now  func() time.Time
}

// NewVerifier builds a verifier. keys[0] should be the current key; previous keys carry RetiredAt.
func NewVerifier(keys []Key, opt Options) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("token: at least one key is required")
	}
	if opt.ClockSkew == 0 {
		opt.ClockSkew = 60 * time.Second
	}
	if opt.MaxTTL == 0 {
		opt.MaxTTL = 30 * 24 * time.Hour
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	v := &Verifier{skew: int64(opt.ClockSkew / time.Second), now: opt.Now}
	for _, k := range keys {
		if k.Secret == "" {
			return nil, errors.New("token: empty secret")
		}
		raw := SigningKey(k.Secret)
		vk := verifyKey{raw: newMacPool(raw), node6: newMacPool(node6Key(raw))}
		if !k.RetiredAt.IsZero() {
			// RetiredAt is the promoting instance's clock, and other instances keep signing with the
			// key until they hear of the promotion (a notification, or at most one key-ring poll):
			// their tokens, minted with a full MaxTTL just after RetiredAt, are ours. The clock skew
			// covers both; a leaked retired key still cannot mint beyond it.
			vk.notAfter = k.RetiredAt.Add(opt.MaxTTL + opt.ClockSkew).Unix()
		}
		v.keys = append(v.keys, vk)
	}
	return v, nil
}

// Verify checks a token and returns its claims. Errors are *Error values whose messages are the
// original's (spec §2.6), comparable with errors.Is against the Err* sentinels.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	if raw == "" {
		return nil, ErrEmpty
	}
	if len(raw) > MaxTokenLength {
		return nil, ErrTooLong
	}
	h, rest, ok1 := strings.Cut(raw, ".")
	c, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s, ".") {
		return nil, ErrFormat
	}
	switch {
	case h == "":
		return nil, ErrEmptyEnvelope
	case c == "":
		return nil, ErrEmptyClaims
	case s == "":
		return nil, ErrEmptySignature
	}
	if len(h)%4 == 1 || len(c)%4 == 1 || len(s)%4 == 1 {
		return nil, ErrBase64
	}

	// Header: the only thing we look at before the signature, and only to refuse algorithms. Tokens
	// we issue carry exactly headerSegment, which needs no decoding.
	if h != headerSegment {
		if err := checkHeader(h); err != nil {
			return nil, err
		}
	}

	// The signature must be canonical unpadded base64url, as the original compared the strings.
	var sigBuf [64]byte
	if base64.RawURLEncoding.DecodedLen(len(s)) != sha256.Size {
		return nil, ErrSignature
	}
	sig := sigBuf[:sha256.Size]
	if n, err := base64.RawURLEncoding.Strict().Decode(sig, []byte(s)); err != nil || n != sha256.Size {
		return nil, ErrSignature
	}
	signed := []byte(raw[:len(h)+1+len(c)])
	notAfter, ok := v.checkSignature(signed, sig)
	if !ok {
		return nil, ErrSignature
	}

	payload, err := decodeSegment(nil, c)
	if err != nil {
		return nil, ErrBase64
	}
	out, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	now := v.now().Unix()
	if out.Exp+v.skew < now {
		return nil, ErrExpired
	}
	if out.Iat != 0 && out.Iat-v.skew > now {
		return nil, ErrIssuedAt
	}
	if out.Nbf != 0 && out.Nbf-v.skew > now {
		return nil, ErrNotBefore
	}
	if notAfter != 0 && out.Exp > notAfter {
		// Signed by a retired key but claims a lifetime no token of ours had when that key retired.
		return nil, ErrSignature
	}
	return out, nil
}

func checkHeader(h string) error {
	var hdrBuf [256]byte
	hb, err := decodeSegment(hdrBuf[:0], h)
	if err != nil {
		return ErrBase64
	}
	var hdr map[string]json.RawMessage // exact, case-sensitive keys
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr == nil {
		return ErrJSON
	}
	if typ, ok := hdr["typ"]; ok && string(typ) != `"JWT"` {
		return ErrType
	}
	if string(hdr["alg"]) != `"HS256"` {
		return ErrAlg
	}
	return nil
}

func parseClaims(payload []byte) (*Claims, error) {
	if c, ok := scanFlatClaims(payload); ok {
		if c.Exp <= 0 {
			return nil, ErrNoExpiration
		}
		return c, nil
	}
	return parseClaimsSlow(payload)
}

// ClaimsOf reads the claims of a payload whose signature another verifier has checked (the asymmetric
// tokens of package signing), so that both formats reach handlers and scripts as the same Claims.
// It applies the same claim rules as Verify (numeric exp required, numeric iat and nbf).
func ClaimsOf(payload []byte) (*Claims, error) { return parseClaimsSlow(payload) }

func inRange(f float64) bool { return f <= 1e15 && f >= -1e15 }

// parseClaimsSlow decodes any claims object exactly as the original's JSON.parse would: keys are
// case-sensitive (encoding/json's struct matching is not, so we decode into a map) and the last
// duplicate wins.
func parseClaimsSlow(payload []byte) (*Claims, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return nil, ErrJSON
	}
	out := &Claims{payload: string(payload)}
	var ok bool
	if out.Exp, ok = numericClaim(m["exp"]); !ok || out.Exp <= 0 {
		return nil, ErrNoExpiration
	}
	if raw, present := m["iat"]; present {
		if out.Iat, ok = numericClaim(raw); !ok {
			return nil, ErrIssuedAt
		}
		out.IatMs = millis(raw)
	}
	if raw, present := m["nbf"]; present {
		if out.Nbf, ok = numericClaim(raw); !ok {
			return nil, ErrNotBefore
		}
	}
	if v, ok := numericClaim(m["ver"]); ok {
		out.Ver = int(v)
	}
	out.Iss = stringClaim(m["iss"])
	out.UID = stringClaim(m["uid"])
	out.Aud = stringClaim(m["aud"])
	out.ID = stringClaim(m["id"])
	out.AMR = amrClaim(m["amr"])
	return out, nil
}

// checkSignature compares the signature with each key's HMAC in constant time (hmac.Equal). A forged
// signature is compared against every key, so its rejection takes the same time whatever it contains.
func (v *Verifier) checkSignature(signed []byte, sig []byte) (notAfter int64, ok bool) {
	var sum [sha256.Size]byte
	for i := range v.keys {
		k := &v.keys[i]
		for _, p := range [2]*macPool{k.raw, k.node6} {
			m := p.p.Get().(hash.Hash)
			m.Reset()
			m.Write(signed)
			got := m.Sum(sum[:0])
			p.p.Put(m)
			if hmac.Equal(got, sig) {
				// Returning early reveals only that a valid signature matched, which its sender knows.
				return k.notAfter, true
			}
		}
	}
	return 0, false
}

// decodeSegment decodes base64url, tolerating '=' padding on the header and claims (some hand-written
// snippets left it in; the signature covers the segment as sent, so this changes nothing signed).
func decodeSegment(dst []byte, s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	n := base64.RawURLEncoding.DecodedLen(len(s))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	m, err := base64.RawURLEncoding.Strict().Decode(dst, []byte(s))
	return dst[:m], err
}

// numericClaim parses a JSON number claim into whole seconds. Strings ("never"), booleans and objects
// are refused: the original let a non-numeric exp live forever.
func numericClaim(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, false
	}
	if f > 1e15 || f < -1e15 {
		return 0, false
	}
	return int64(f), true
}

func stringClaim(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
		return string(raw) // numeric ids (rows of the original's __users table) keep their text
	}
	if raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// amrClaim reads an array of strings; anything else (or an array holding a non-string) is no amr.
func amrClaim(raw json.RawMessage) []string {
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	var v []string
	if json.Unmarshal(raw, &v) != nil || len(v) > maxAMR {
		return nil
	}
	return v
}

// maxAMR bounds the amr values read from a token.
const maxAMR = 16

// HasAMR reports whether the token's amr lists method.
func (c *Claims) HasAMR(method string) bool {
	for _, m := range c.AMR {
		if m == method {
			return true
		}
	}
	return false
}

// millis reads a numeric claim in milliseconds (0 when it is not a number).
func millis(raw json.RawMessage) int64 {
	var f float64
	if json.Unmarshal(raw, &f) != nil || !inRange(f) {
		return 0
	}
	return int64(math.Round(f * 1000))
}
