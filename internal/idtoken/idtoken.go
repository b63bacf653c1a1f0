// Package idtoken verifies OpenID Connect ID tokens from configured providers
// (OpenID Connect Core 1.0 §3.1.3.7, RFC 8725) on top of package keyset.
//
// A token is rejected unless: it is a compact JWS of bounded size whose header
// names no key source (jku, x5u, jwk, x5c are refused, never followed) and no
// crit extension; its alg is in the provider's allowlist (never none, never HS*)
// and equals the one algorithm of the key it names; iss is exactly a configured
// issuer (or, for Entra multi-tenant, the issuer template filled with an
// allowlisted tid); aud contains one of our client ids and nothing untrusted; exp,
// nbf and iat hold within a small leeway; azp is ours when there are several
// audiences (or always, when authorized parties are configured); nonce matches
// when the flow set one; and the signature verifies (go-jose v4).
//
// The signature step, with go-oidc's JWS parsing and its issuer and nbf checks, runs through
// coreos/go-oidc's IDTokenVerifier with our key cache as its oidc.KeySet (verifyOIDC says which of its
// checks are skipped and why: they are stricter here).
//
// The unverified iss/aud/exp are checked before the key lookup so that only
// plausible tokens can make the key set refresh on an unknown kid; the claims
// returned are those of the verified payload.
package idtoken

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/jsonx"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/keyset"
)

// Defaults and limits.
const (
	DefaultLeeway        = time.Minute
	MaxLeeway            = 5 * time.Minute
	DefaultMaxTokenBytes = 16 << 10
	maxHeaderBytes       = 4 << 10
	maxKidlessCandidates = 8
	tenantPlaceholder    = "{tenantid}"
)

// Well-known issuer values.
const (
	GoogleIssuer        = "https://accounts.google.com"
	GoogleLegacyIssuer  = "accounts.google.com"
	AppleIssuer         = "https://appleid.apple.com"
	EntraIssuerTemplate = "https://login.microsoftonline.com/{tenantid}/v2.0"
)

// GoogleIssuers returns both forms of Google's issuer.
func GoogleIssuers() []string { return []string{GoogleIssuer, GoogleLegacyIssuer} }

// Clock supplies the current time; tests inject a fake one.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Provider is the verification policy for one identity provider.
type Provider struct {
	// Name is how callers refer to the provider ("google", "aad", ...).
	Name string
	// Issuers are the exact iss values accepted.
	Issuers []string
	// IssuerTemplate, for Entra multi-tenant apps, is an issuer containing
	// "{tenantid}" (EntraIssuerTemplate); a token matches when iss equals it with
	// the token's tid substituted and tid is in TenantAllowlist (required then).
	IssuerTemplate  string
	TenantAllowlist []string
	// ClientIDs are our client ids; aud must contain at least one.
	ClientIDs []string
	// TrustedAudiences may appear in aud next to a client id; any other extra
	// audience rejects the token (OIDC Core §3.1.3.7 step 3).
	TrustedAudiences []string
	// AuthorizedParties are accepted azp values besides ClientIDs (e.g. Google's
	// Android/iOS client ids in hybrid sign-in). When set, a present azp must be
	// one of ClientIDs ∪ AuthorizedParties; when aud has several values, azp is
	// required and checked the same way.
	AuthorizedParties []string
	// Algorithms is the allowlist (default RS256). none and HS* are refused.
	Algorithms []jose.SignatureAlgorithm
	// Keys is the provider's key set.
	Keys *keyset.Set
	// Leeway for exp, nbf and iat (default 1 min, at most 5 min).
	Leeway time.Duration
	// MaxAge, if set, rejects tokens whose iat is older than this.
	MaxAge time.Duration
}

// Config configures a Verifier.
type Config struct {
	Providers []Provider
	// Clock defaults to the system clock.
	Clock Clock
	// MaxTokenBytes caps the token size before any parsing (default 16 KiB).
	MaxTokenBytes int
}

type provider struct {
	Provider
	issuers      map[string]bool
	tenants      map[string]bool
	clientIDs    map[string]bool
	trustedAuds  map[string]bool
	azps         map[string]bool
	tplPrefix    string
	tplSuffix    string
	checkAzpOnce bool
}

// Verifier verifies ID tokens for a fixed set of providers. Safe for concurrent use.
type Verifier struct {
	providers map[string]*provider
	clock     Clock
	maxBytes  int
}

var allowedAlgs = map[jose.SignatureAlgorithm]bool{
	jose.RS256: true, jose.RS384: true, jose.RS512: true,
	jose.PS256: true, jose.PS384: true, jose.PS512: true,
	jose.ES256: true, jose.ES384: true, jose.ES512: true,
	jose.EdDSA: true,
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// New validates the configuration and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	v := &Verifier{providers: map[string]*provider{}, clock: cfg.Clock, maxBytes: cfg.MaxTokenBytes}
	if v.clock == nil {
		v.clock = systemClock{}
	}
	if v.maxBytes <= 0 {
		v.maxBytes = DefaultMaxTokenBytes
	}
	for _, pc := range cfg.Providers {
		p := &provider{Provider: pc}
		if p.Name == "" {
			return nil, errors.New("idtoken: provider without a name")
		}
		if _, dup := v.providers[p.Name]; dup {
			return nil, fmt.Errorf("idtoken: provider %q configured twice", p.Name)
		}
		if p.Keys == nil {
			return nil, fmt.Errorf("idtoken: provider %q has no key set", p.Name)
		}
		if len(p.ClientIDs) == 0 || slices.Contains(p.ClientIDs, "") {
			return nil, fmt.Errorf("idtoken: provider %q needs non-empty client ids", p.Name)
		}
		if len(p.Issuers) == 0 && p.IssuerTemplate == "" {
			return nil, fmt.Errorf("idtoken: provider %q has no issuer", p.Name)
		}
		if slices.Contains(p.Issuers, "") {
			return nil, fmt.Errorf("idtoken: provider %q has an empty issuer", p.Name)
		}
		if p.IssuerTemplate != "" {
			pre, suf, ok := strings.Cut(p.IssuerTemplate, tenantPlaceholder)
			if !ok || strings.Contains(suf, tenantPlaceholder) {
				return nil, fmt.Errorf("idtoken: provider %q: IssuerTemplate must contain %s once", p.Name, tenantPlaceholder)
			}
			if len(p.TenantAllowlist) == 0 {
				return nil, fmt.Errorf("idtoken: provider %q: IssuerTemplate requires a TenantAllowlist", p.Name)
			}
			p.tplPrefix, p.tplSuffix = pre, suf
			p.tenants = map[string]bool{}
			for _, t := range p.TenantAllowlist {
				p.tenants[strings.ToLower(t)] = true
			}
		}
		if len(p.Algorithms) == 0 {
			p.Algorithms = []jose.SignatureAlgorithm{jose.RS256}
		}
		for _, a := range p.Algorithms {
			if !allowedAlgs[a] {
				return nil, fmt.Errorf("idtoken: provider %q: algorithm %q is not allowed for provider tokens", p.Name, a)
			}
		}
		if p.Leeway <= 0 {
			p.Leeway = DefaultLeeway
		}
		if p.Leeway > MaxLeeway {
			return nil, fmt.Errorf("idtoken: provider %q: leeway %v exceeds %v", p.Name, p.Leeway, MaxLeeway)
		}
		p.issuers = set(p.Issuers)
		p.clientIDs = set(p.ClientIDs)
		p.trustedAuds = set(p.TrustedAudiences)
		p.azps = set(append(slices.Clone(p.ClientIDs), p.AuthorizedParties...))
		p.checkAzpOnce = len(p.AuthorizedParties) > 0
		v.providers[p.Name] = p
	}
	return v, nil
}

// Option adjusts one verification.
type Option func(*options)

type options struct {
	nonce    string
	useNonce bool
}

// WithNonce requires the nonce claim to equal n (the value the flow sent to the
// provider; for Apple, the SHA-256 the app passed). An empty n never matches.
func WithNonce(n string) Option {
	return func(o *options) { o.nonce, o.useNonce = n, true }
}

type header struct {
	alg, kid, x5t string
}

// forbiddenHeaders name key sources that must never be followed (RFC 8725 §3.10).
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "x5c"}

// Verify verifies rawIDToken for the named provider and returns its claims. Errors
// are *Error values matching the sentinels (ErrExpired, ErrUnknownKey, ...) with
// errors.Is; context errors are wrapped and also match context.Canceled /
// context.DeadlineExceeded.
func (v *Verifier) Verify(ctx context.Context, providerName, rawIDToken string, opts ...Option) (*Claims, error) {
	p, ok := v.providers[providerName]
	if !ok {
		return nil, fail("", ReasonUnknownProvider, "", nil)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	name := p.Name
	if len(rawIDToken) > v.maxBytes {
		return nil, failf(name, ReasonMalformed, "token longer than %d bytes", v.maxBytes)
	}
	if strings.Count(rawIDToken, ".") != 2 {
		return nil, fail(name, ReasonMalformed, "not a compact JWS", nil)
	}
	h64, rest, _ := strings.Cut(rawIDToken, ".")
	p64, s64, _ := strings.Cut(rest, ".")

	// Header: refuse key sources, unknown extensions and algorithms first.
	hdr, herr := parseHeader(h64)
	if herr != nil {
		return nil, herr.withProvider(name)
	}
	if !slices.Contains(p.Algorithms, jose.SignatureAlgorithm(hdr.alg)) {
		return nil, fail(name, ReasonAlgNotAllowed, "", nil)
	}
	if p64 == "" || s64 == "" {
		return nil, fail(name, ReasonMalformed, "empty JWS part", nil)
	}

	// Unverified payload: only to decide whether the token is plausible enough to
	// look keys up (and possibly refresh them). Trusted once the signature verifies
	// over these same bytes.
	payload, derr := base64.RawURLEncoding.Strict().DecodeString(p64)
	if derr != nil {
		return nil, fail(name, ReasonMalformed, "payload encoding", nil)
	}
	var rc rawClaims
	if err := jsonx.Unmarshal(payload, &rc); err != nil {
		return nil, fail(name, ReasonMalformed, "payload", err)
	}
	now := v.clock.Now()
	if err := p.checkCheap(&rc, now); err != nil {
		return nil, err
	}

	// nbf before the signature, as go-oidc does (with our leeway, and its reason).
	if rc.Nbf != nil && rc.Nbf.t.After(now.Add(p.Leeway)) {
		return nil, fail(name, ReasonNotYetValid, "", nil)
	}
	key, verified, err := p.verifyOIDC(ctx, rawIDToken, hdr, rc.Iss, now)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(verified, payload) {
		return nil, fail(name, ReasonBadSignature, "payload mismatch", nil)
	}
	if err := p.checkVerified(&rc, now, &o); err != nil {
		return nil, err
	}
	c := &Claims{
		Provider:        name,
		Issuer:          rc.Iss,
		Subject:         rc.Sub,
		Audience:        []string(rc.Aud),
		AuthorizedParty: rc.Azp,
		Expiry:          rc.Exp.t,
		IssuedAt:        rc.Iat.t,
		Nonce:           rc.Nonce,
		Email:           rc.Email,
		EmailVerified:   bool(rc.EmailVerified),
		Name:            rc.Name,
		TenantID:        rc.Tid,
		KeyID:           key.ID,
		Algorithm:       key.Algorithm,
		raw:             verified,
	}
	if rc.Nbf != nil {
		c.NotBefore = rc.Nbf.t
	}
	return c, nil
}

type headerError struct {
	reason Reason
	detail string
	cause  error
}

func (e *headerError) withProvider(name string) error { return fail(name, e.reason, e.detail, e.cause) }

func parseHeader(h64 string) (header, *headerError) {
	var hdr header
	if base64.RawURLEncoding.DecodedLen(len(h64)) > maxHeaderBytes {
		return hdr, &headerError{reason: ReasonMalformed, detail: "header too long"}
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h64)
	if err != nil {
		return hdr, &headerError{reason: ReasonMalformed, detail: "header encoding"}
	}
	var m map[string]json.RawMessage
	if err := jsonx.Unmarshal(hb, &m); err != nil {
		return hdr, &headerError{reason: ReasonMalformed, detail: "header", cause: err}
	}
	for _, name := range forbiddenHeaders {
		if _, ok := m[name]; ok {
			return hdr, &headerError{reason: ReasonForbiddenHeader, detail: "header carries " + name}
		}
	}
	if _, ok := m["crit"]; ok {
		return hdr, &headerError{reason: ReasonMalformed, detail: "crit header not supported"}
	}
	str := func(field string) (string, bool) {
		raw, ok := m[field]
		if !ok {
			return "", true
		}
		var s string
		return s, jsonx.Unmarshal(raw, &s) == nil
	}
	var okAlg, okKid, okX5t, okTyp bool
	var typ string
	hdr.alg, okAlg = str("alg")
	hdr.kid, okKid = str("kid")
	hdr.x5t, okX5t = str("x5t")
	typ, okTyp = str("typ")
	if !okAlg || !okKid || !okX5t || !okTyp {
		return hdr, &headerError{reason: ReasonMalformed, detail: "header member of the wrong type"}
	}
	if hdr.alg == "" {
		return hdr, &headerError{reason: ReasonMalformed, detail: "header has no alg"}
	}
	if strings.EqualFold(hdr.alg, "none") || strings.HasPrefix(strings.ToUpper(hdr.alg), "HS") {
		return hdr, &headerError{reason: ReasonAlgNotAllowed, detail: "unsigned and MAC tokens are never accepted"}
	}
	if typ != "" && !strings.EqualFold(typ, "JWT") && !strings.EqualFold(typ, "application/jwt") {
		return hdr, &headerError{reason: ReasonWrongType}
	}
	return hdr, nil
}

// checkCheap checks iss, aud and exp on the unverified claims.
func (p *provider) checkCheap(rc *rawClaims, now time.Time) error {
	if rc.Iss == "" {
		return fail(p.Name, ReasonMissingClaim, "iss", nil)
	}
	if !p.issuers[rc.Iss] {
		if p.tenants == nil || !strings.HasPrefix(rc.Iss, p.tplPrefix) || !strings.HasSuffix(rc.Iss, p.tplSuffix) {
			return fail(p.Name, ReasonWrongIssuer, "", nil)
		}
		if rc.Tid == "" || rc.Iss != p.tplPrefix+rc.Tid+p.tplSuffix {
			return fail(p.Name, ReasonWrongIssuer, "iss does not match the tenant issuer for tid", nil)
		}
		if !p.tenants[strings.ToLower(rc.Tid)] {
			return fail(p.Name, ReasonTenantNotAllowed, "", nil)
		}
	}
	if len(rc.Aud) == 0 {
		return fail(p.Name, ReasonMissingClaim, "aud", nil)
	}
	ours := false
	for _, a := range rc.Aud {
		switch {
		case p.clientIDs[a]:
			ours = true
		case p.trustedAuds[a]:
		default:
			return fail(p.Name, ReasonWrongAudience, "untrusted additional audience", nil)
		}
	}
	if !ours {
		return fail(p.Name, ReasonWrongAudience, "", nil)
	}
	if rc.Exp == nil {
		return fail(p.Name, ReasonMissingClaim, "exp", nil)
	}
	if !now.Before(rc.Exp.t.Add(p.Leeway)) {
		return fail(p.Name, ReasonExpired, "", nil)
	}
	return nil
}

// checkVerified checks the remaining claims once the signature has verified.
func (p *provider) checkVerified(rc *rawClaims, now time.Time, o *options) error {
	if rc.Sub == "" {
		return fail(p.Name, ReasonMissingClaim, "sub", nil)
	}
	if rc.Iat == nil {
		return fail(p.Name, ReasonMissingClaim, "iat", nil)
	}
	if rc.Iat.t.After(now.Add(p.Leeway)) {
		return fail(p.Name, ReasonIssuedInFuture, "", nil)
	}
	if p.MaxAge > 0 && now.Sub(rc.Iat.t) > p.MaxAge+p.Leeway {
		return fail(p.Name, ReasonTooOld, "", nil)
	}
	if len(rc.Aud) > 1 || p.checkAzpOnce {
		if rc.Azp == "" && len(rc.Aud) > 1 {
			return fail(p.Name, ReasonWrongAuthorizedParty, "azp required with several audiences", nil)
		}
		if rc.Azp != "" && !p.azps[rc.Azp] {
			return fail(p.Name, ReasonWrongAuthorizedParty, "", nil)
		}
	}
	if o.useNonce {
		if rc.Nonce == "" {
			return fail(p.Name, ReasonNonce, "nonce claim missing", nil)
		}
		if o.nonce == "" || subtle.ConstantTimeCompare([]byte(rc.Nonce), []byte(o.nonce)) != 1 {
			return fail(p.Name, ReasonNonce, "", nil)
		}
	}
	return nil
}

// keySet is our key cache as go-oidc's oidc.KeySet: the signature step of oidc.IDTokenVerifier runs
// on package keyset (background refresh, rate-limited refresh on an unknown kid, stale-while-down)
// instead of go-oidc's RemoteKeySet, and keeps the key it used and our classified error, which
// go-oidc flattens into a string.
type keySet struct {
	p       *provider
	hdr     header
	key     *keyset.Key
	payload []byte
	err     error
}

func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	k.key, k.payload, k.err = k.p.verifySignature(ctx, raw, k.hdr)
	return k.payload, k.err
}

// verifyOIDC runs coreos/go-oidc's oidc.IDTokenVerifier on our key set: its JWS parsing (one
// signature, the provider's algorithms), its issuer and nbf checks, and the signature through keySet.
// go-oidc is looser than OpenID Connect Core §3.1.3.7 as this package applies it, so its checks are a
// second layer, never the only one:
//   - it expects one exact issuer; we accept several spellings and the Entra template with a tid
//     allowlist, so iss (checked by checkCheap) is handed over as the one to expect, or the check is
//     skipped for the template;
//   - it checks one client id; aud against our set, and azp, are ours (SkipClientIDCheck);
//   - it checks no nonce and no iat (ours, in checkVerified);
//   - it decodes claims with encoding/json, which matches member names case-insensitively: an
//     unrelated "EXP" member would decide its expiry check, so that check is ours alone
//     (SkipExpiryCheck; checkCheap reads the exact "exp" with our leeway). On iss and nbf such a
//     member can only make go-oidc refuse a token we accept, never the reverse.
func (p *provider) verifyOIDC(ctx context.Context, raw string, hdr header, iss string, now time.Time) (*keyset.Key, []byte, error) {
	algs := make([]string, len(p.Algorithms))
	for i, a := range p.Algorithms {
		algs[i] = string(a)
	}
	ks := &keySet{p: p, hdr: hdr}
	v := oidc.NewVerifier(iss, ks, &oidc.Config{
		SkipClientIDCheck: true, SkipIssuerCheck: p.IssuerTemplate != "", SkipExpiryCheck: true, SupportedSigningAlgs: algs,
		Now: func() time.Time { return now },
	})
	if _, err := v.Verify(ctx, raw); err != nil {
		if ks.err != nil {
			return nil, nil, ks.err
		}
		if ks.key == nil {
			return nil, nil, fail(p.Name, ReasonMalformed, "refused by go-oidc before the signature", err)
		}
		return nil, nil, fail(p.Name, ReasonMalformed, "refused by go-oidc", err)
	}
	if ks.key == nil { // go-oidc accepted without asking our key set: never trust that
		return nil, nil, fail(p.Name, ReasonBadSignature, "signature not checked", nil)
	}
	return ks.key, ks.payload, nil
}

// verifySignature finds the key the header names and verifies the JWS with it.
func (p *provider) verifySignature(ctx context.Context, raw string, hdr header) (*keyset.Key, []byte, error) {
	alg := jose.SignatureAlgorithm(hdr.alg)
	var candidates []*keyset.Key
	if hdr.kid == "" && hdr.x5t == "" {
		keys, err := p.Keys.Keys(ctx, true)
		if err != nil {
			return nil, nil, p.keyError(err)
		}
		for _, k := range keys {
			if k.Algorithm == alg && len(candidates) < maxKidlessCandidates {
				candidates = append(candidates, k)
			}
		}
		if len(candidates) == 0 {
			return nil, nil, fail(p.Name, ReasonUnknownKey, "no key for the token's algorithm", nil)
		}
	} else {
		k, err := p.Keys.Get(ctx, keyset.KeyID{Kid: hdr.kid, X5t: hdr.x5t}, true)
		if err != nil {
			return nil, nil, p.keyError(err)
		}
		if k.Algorithm != alg {
			// RFC 8725 §3.1: each key is used with exactly one algorithm.
			return nil, nil, fail(p.Name, ReasonAlgNotAllowed, "the key is for another algorithm", nil)
		}
		candidates = []*keyset.Key{k}
	}
	var lastErr error
	for _, k := range candidates {
		payload, err := k.VerifyCompact(raw)
		if err == nil {
			return k, payload, nil
		}
		lastErr = err
	}
	if errors.Is(lastErr, jose.ErrCryptoFailure) {
		return nil, nil, fail(p.Name, ReasonBadSignature, "", nil)
	}
	return nil, nil, fail(p.Name, ReasonBadSignature, "", lastErr)
}

func (p *provider) keyError(err error) error {
	switch {
	case errors.Is(err, keyset.ErrUnknownKey):
		return fail(p.Name, ReasonUnknownKey, "", err)
	default: // keyset.ErrUnavailable, context errors
		return fail(p.Name, ReasonKeysUnavailable, "", err)
	}
}
