// Package keyset keeps the signing keys of one identity provider (one issuer) and
// survives key rotation, provider outages and key-flooding attacks.
//
// This cache is ours and hand-written on purpose: no Go library does all of what it
// does (see shared/spec/provider-keys-and-tokens.md §1). keyfunc/jwkset does not
// coalesce fetches and ignores Cache-Control; jwx does not refresh on an unknown kid
// and has no rate limit; go-oidc has no rate limit, no background refresh and, by
// default, no HTTP timeout; go-jose fetches nothing. JWK/PEM parsing and signature
// verification are not ours: they come from go-jose v4 and the standard library.
//
// What a Set does:
//
//   - fetches a JWK Set (RFC 7517), Google's PEM-certificate map (kid → PEM) or an
//     x5t-keyed set (Entra) through an HTTP client with timeouts and a 1 MiB body
//     cap; unusable or unsupported keys are skipped (RFC 7517 §5) and a fetch fails
//     only when no usable key remains; every successful fetch replaces the whole set
//     atomically, so removed keys stop verifying;
//   - gives each key exactly one algorithm (the JWK's "alg", or the one its type
//     implies), so the caller can enforce RFC 8725 §3.1;
//   - refreshes on an unknown kid/x5t only when the caller says the token passed its
//     cheap checks; those refreshes are coalesced (one fetch for any number of
//     waiters, each waiter honouring its own context), rate limited (one forced
//     fetch per ForcedRefreshInterval, default 30 s), sent with Cache-Control:
//     no-cache, and followed by a short negative cache for kids proven absent;
//   - refreshes in the background (Run) ahead of the lifetime the provider announces
//     with Cache-Control max-age / Expires / Age, clamped to [MinRefresh, MaxRefresh];
//   - keeps verifying with the last good set while the provider is down, up to
//     MaxStale (default 48 h) after the last successful fetch, then fails closed;
//     start-up never fails because a provider is unreachable;
//   - reports every fetch and miss to an Observer (a Prometheus implementation is
//     provided) and logs through an injected *slog.Logger.
//
// A Set never looks at token headers itself: following jku, x5u, jwk or x5c from a
// token is the caller's job to refuse (package idtoken does).
package keyset
