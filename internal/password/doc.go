// Package password is Gatehouse's password domain logic: argon2id hashing,
// verification of legacy hash formats, transparent upgrade decisions, a
// hashing concurrency limiter, and the password/email policy. It has no
// HTTP, database or SMTP code; the accounts feature builds on it.
//
// # Typical use
//
//	lim := password.NewLimiter(password.DefaultConcurrency(), password.DefaultQueue(password.DefaultConcurrency()))
//	h, err := password.NewHasher(password.Config{Params: cfgParams, Limiter: lim})
//	pol := password.DefaultPolicy()
//
//	// Registration / reset:
//	pw, err := pol.NormalizePassword(raw)      // *PolicyError → 400 with Reason
//	addr, err := pol.NormalizeEmail(rawEmail)  // store addr; unique index on EmailKey(addr)
//	stored, err := h.Hash(ctx, pw)
//
//	// Login:
//	pw, err := pol.NormalizeLoginPassword(raw)
//	if user == nil || user.Hash == "" {
//		err = h.DummyVerify(ctx, pw)           // same cost as a real login
//	} else {
//		res, err = h.VerifyAndUpgrade(ctx, user.Hash, pw)
//		if res.Match && res.NewHash != "" { /* UPDATE ... SET hash=NewHash WHERE hash=old */ }
//	}
//	// errors.Is(err, password.ErrBusy) → 503 (or 429) with Retry-After.
//
// # Stored formats
//
// Every stored hash is a self-describing string carrying all its parameters
// (full grammar and import mapping in FORMATS.md). Base64 fields are
// standard-alphabet base64 without padding, as in the PHC string format.
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>   new hashes; imports
//	$argon2i$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>    imports
//	$2a$<cost>$<53 chars> | $2b$... | $2y$...                    bcrypt, native
//	$pbkdf2-sha1$i=<iterations>$<salt>$<hash>                    also sha256, sha512
//	$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>
//	$firebase-scrypt$ln=<mem_cost>,r=<rounds>,ss=<salt separator>,sk=<signer key>$<salt>$<hash>
//
// The salt field always holds the exact bytes fed to the KDF. For the
// classic Mobile Services scripts, which passed the base64 salt *string*
// to crypto.pbkdf2, that is the string's own (UTF-8) bytes, so such a row is
// stored as $pbkdf2-sha1$i=1000$<base64 of the salt string's bytes>$<hash>.
// How an import column becomes salt bytes (utf8, base64, hex) is resolved
// once, at import, by FromImport; the stored string is unambiguous.
//
// # Verification and upgrade
//
// Hasher.Verify dispatches on the string's prefix, refuses (before any
// hashing) parameters above the configured Limits — a hostile or broken row
// must not make the server allocate gigabytes — and compares in constant
// time. Result.NeedsRehash is true for every format other than argon2id at
// exactly the current Params. Hasher.VerifyAndUpgrade also computes the
// replacement hash in the same limiter slot and pads failed legacy
// verifications with a dummy argon2id computation, so response time does
// not reveal whether an account exists or is still on a legacy hash.
//
// # Concurrency
//
// All hashing runs under a Limiter (GOMAXPROCS slots, 16 waiters per slot
// by default). Beyond the queue, calls fail at once with ErrBusy. At the
// default parameters each running hash holds 19 MiB, so hashing memory is
// bounded by slots × 19 MiB (38 MiB on 2 CPUs; the Go heap may reach about
// twice that between collections). See Limiter and ConcurrencyFor.
//
// # Normalization
//
// The Hasher hashes the bytes it is given. Callers pass passwords through
// Policy.NormalizePassword (set) or Policy.NormalizeLoginPassword (login):
// NFKC, at most 1024 bytes, at least 8 code points when set, no composition
// rules (NIST SP 800-63B). Emails are trimmed, NFC-normalized, validated as
// a plain addr-spec, and the domain is lower-cased; uniqueness uses
// EmailKey, the fully lower-cased address.
package password
