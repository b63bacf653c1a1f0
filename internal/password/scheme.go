package password

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Scheme names a stored hash format. The value is the PHC identifier that
// starts the stored string ("$argon2id$..."), except for bcrypt, whose native
// strings start with "$2a$", "$2b$" or "$2y$".
type Scheme string

// Supported schemes. See FORMATS.md for each encoding.
const (
	SchemeArgon2id       Scheme = "argon2id"
	SchemeArgon2i        Scheme = "argon2i"
	SchemeBcrypt         Scheme = "bcrypt"
	SchemePBKDF2SHA1     Scheme = "pbkdf2-sha1"
	SchemePBKDF2SHA256   Scheme = "pbkdf2-sha256"
	SchemePBKDF2SHA512   Scheme = "pbkdf2-sha512"
	SchemeScrypt         Scheme = "scrypt"
	SchemeFirebaseScrypt Scheme = "firebase-scrypt"
)

// storedHash is one parsed hash string.
type storedHash interface {
	scheme() Scheme
	// checkLimits reports a *LimitError if verifying would exceed l.
	checkLimits(l Limits) error
	// verify recomputes the hash of password and compares in constant time.
	verify(password string) (bool, error)
	// String returns the canonical encoding.
	String() string
}

// parseStored parses any supported hash string. With lenient set (imports
// only), base64 fields may carry padding and use the URL alphabet; the
// canonical String() of the result is always strict.
func parseStored(s string, lenient bool) (storedHash, error) {
	switch {
	case s == "":
		return nil, malformed("", "empty hash string")
	case len(s) > maxStoredLength:
		return nil, malformed("", "hash string longer than %d bytes", maxStoredLength)
	case s[0] != '$':
		return nil, malformed("", "hash string does not start with '$'")
	}
	id, _, _ := strings.Cut(s[1:], "$")
	switch id {
	case "argon2id":
		return parseArgon2(s, SchemeArgon2id, lenient)
	case "argon2i":
		return parseArgon2(s, SchemeArgon2i, lenient)
	case "2a", "2b", "2y":
		return parseBcrypt(s)
	case "pbkdf2-sha1":
		return parsePBKDF2(s, SchemePBKDF2SHA1, lenient)
	case "pbkdf2-sha256":
		return parsePBKDF2(s, SchemePBKDF2SHA256, lenient)
	case "pbkdf2-sha512":
		return parsePBKDF2(s, SchemePBKDF2SHA512, lenient)
	case "scrypt":
		return parseScrypt(s, lenient)
	case "firebase-scrypt":
		return parseFirebase(s, lenient)
	}
	if len(id) > 20 {
		id = id[:20] + "..."
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupported, id)
}

// ---- shared helpers -------------------------------------------------------

var b64 = base64.RawStdEncoding.Strict()

// decodeB64 decodes a PHC base64 field. Strictly, the field must be exactly
// the unpadded standard encoding of the bytes (so encodings are canonical).
func decodeB64(field string, lenient bool) ([]byte, bool) {
	if lenient {
		return decodeB64Lenient(field)
	}
	b, err := b64.DecodeString(field)
	if err != nil || b64.EncodeToString(b) != field {
		return nil, false
	}
	return b, true
}

// decodeB64Lenient accepts standard or URL alphabet, with or without padding.
func decodeB64Lenient(field string) ([]byte, bool) {
	trimmed := strings.TrimRight(field, "=")
	if len(field)-len(trimmed) > 2 || strings.ContainsAny(trimmed, "\r\n\t ") {
		return nil, false
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(trimmed, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(trimmed)
	if err != nil {
		return nil, false
	}
	return b, true
}

// splitFields splits s at '$' and checks the expected count (the first,
// empty field before the leading '$' included).
func splitFields(s string, sch Scheme, n int) ([]string, error) {
	f := strings.Split(s, "$")
	if len(f) != n {
		return nil, malformed(sch, "expected %d '$'-separated fields, got %d", n-1, len(f)-1)
	}
	return f, nil
}

// parseParams parses "k1=v1,k2=v2" requiring exactly keys, in that order.
func parseParams(sch Scheme, field string, keys ...string) ([]string, error) {
	kvs := strings.Split(field, ",")
	if len(kvs) != len(keys) {
		return nil, malformed(sch, "expected parameters %s", strings.Join(keys, ","))
	}
	vals := make([]string, len(keys))
	for i, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k != keys[i] {
			return nil, malformed(sch, "expected parameters %s", strings.Join(keys, ","))
		}
		vals[i] = v
	}
	return vals, nil
}

// parseDec parses a PHC decimal: digits only, no sign, no leading zero,
// between lo and hi inclusive.
func parseDec(sch Scheme, name, v string, lo, hi uint64) (uint64, error) {
	if v == "" || len(v) > 12 || (len(v) > 1 && v[0] == '0') || strings.TrimLeft(v, "0123456789") != "" {
		return 0, malformed(sch, "parameter %s is not a decimal number", name)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, malformed(sch, "parameter %s out of range [%d, %d]", name, lo, hi)
	}
	return n, nil
}

func saltAndKey(sch Scheme, saltField, keyField string, minSalt int, lenient bool) (salt, key []byte, err error) {
	salt, ok := decodeB64(saltField, lenient)
	if !ok {
		return nil, nil, malformed(sch, "salt is not valid unpadded base64")
	}
	if len(salt) < minSalt {
		return nil, nil, malformed(sch, "salt shorter than %d bytes", minSalt)
	}
	key, ok = decodeB64(keyField, lenient)
	if !ok {
		return nil, nil, malformed(sch, "hash is not valid unpadded base64")
	}
	if len(key) < minKeyLength {
		return nil, nil, malformed(sch, "hash shorter than %d bytes", minKeyLength)
	}
	return salt, key, nil
}

func checkSaltKey(sch Scheme, l Limits, salt, key int) error {
	if err := overLimit(sch, "salt length", int64(salt), int64(l.MaxSaltBytes)); err != nil {
		return err
	}
	return overLimit(sch, "key length", int64(key), int64(l.MaxKeyBytes))
}

func enc(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// ---- argon2 ---------------------------------------------------------------

type argon2Hash struct {
	variant Scheme // SchemeArgon2id or SchemeArgon2i
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parseArgon2(s string, sch Scheme, lenient bool) (storedHash, error) {
	f := strings.Split(s, "$")
	if len(f) == 5 && strings.HasPrefix(f[2], "m=") {
		return nil, fmt.Errorf("%w: %s without v= is argon2 version 0x10, only v=19 is supported", ErrUnsupported, sch)
	}
	if len(f) != 6 {
		return nil, malformed(sch, "expected $%s$v=19$m=,t=,p=$salt$hash", sch)
	}
	if f[2] != "v=19" {
		if strings.HasPrefix(f[2], "v=") {
			return nil, fmt.Errorf("%w: %s version %.8q, only v=19 is supported", ErrUnsupported, sch, f[2][2:])
		}
		return nil, malformed(sch, "expected version field v=19")
	}
	v, err := parseParams(sch, f[3], "m", "t", "p")
	if err != nil {
		return nil, err
	}
	p, err := parseDec(sch, "p", v[2], 1, 255)
	if err != nil {
		return nil, err
	}
	m, err := parseDec(sch, "m", v[0], 8*p, 1<<32-1)
	if err != nil {
		return nil, err
	}
	t, err := parseDec(sch, "t", v[1], 1, 1<<32-1)
	if err != nil {
		return nil, err
	}
	salt, key, err := saltAndKey(sch, f[4], f[5], minArgon2Salt, lenient)
	if err != nil {
		return nil, err
	}
	return &argon2Hash{variant: sch, memory: uint32(m), time: uint32(t), threads: uint8(p), salt: salt, key: key}, nil
}

func (a *argon2Hash) scheme() Scheme { return a.variant }

func (a *argon2Hash) checkLimits(l Limits) error {
	if err := overLimit(a.variant, "m", int64(a.memory), int64(l.MaxMemoryKiB)); err != nil {
		return err
	}
	if err := overLimit(a.variant, "t", int64(a.time), int64(l.MaxTime)); err != nil {
		return err
	}
	if err := overLimit(a.variant, "p", int64(a.threads), int64(l.MaxParallelism)); err != nil {
		return err
	}
	return checkSaltKey(a.variant, l, len(a.salt), len(a.key))
}

func (a *argon2Hash) derive(password string) []byte {
	if a.variant == SchemeArgon2i {
		return argon2.Key([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
	}
	return argon2.IDKey([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
}

func (a *argon2Hash) verify(password string) (bool, error) {
	return subtle.ConstantTimeCompare(a.derive(password), a.key) == 1, nil
}

func (a *argon2Hash) String() string {
	return fmt.Sprintf("$%s$v=19$m=%d,t=%d,p=%d$%s$%s", a.variant, a.memory, a.time, a.threads, enc(a.salt), enc(a.key))
}

// ---- bcrypt ---------------------------------------------------------------

type bcryptHash struct {
	raw  string
	cost int
}

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func parseBcrypt(s string) (storedHash, error) {
	// $2b$10$ + 22 salt chars + 31 hash chars = 60 bytes.
	if len(s) != 60 || s[6] != '$' {
		return nil, malformed(SchemeBcrypt, "expected $2b$NN$ followed by 53 characters")
	}
	cost, err := parseDec(SchemeBcrypt, "cost", strings.TrimPrefix(s[4:6], "0"), uint64(bcrypt.MinCost), uint64(bcrypt.MaxCost))
	if err != nil {
		return nil, err
	}
	for i := 7; i < len(s); i++ {
		if strings.IndexByte(bcryptAlphabet, s[i]) < 0 {
			return nil, malformed(SchemeBcrypt, "invalid character in salt or hash")
		}
	}
	return &bcryptHash{raw: s, cost: int(cost)}, nil
}

func (b *bcryptHash) scheme() Scheme { return SchemeBcrypt }

func (b *bcryptHash) checkLimits(l Limits) error {
	return overLimit(SchemeBcrypt, "cost", int64(b.cost), int64(l.MaxBcryptCost))
}

// verify follows bcrypt semantics: only the first 72 bytes of the password
// count, as in every implementation that produced such hashes.
func (b *bcryptHash) verify(password string) (bool, error) {
	err := bcrypt.CompareHashAndPassword([]byte(b.raw), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %w", ErrMalformed, err)
	}
}

func (b *bcryptHash) String() string { return b.raw }

// ---- PBKDF2 ---------------------------------------------------------------

type pbkdf2Hash struct {
	variant    Scheme
	iterations int
	salt       []byte
	key        []byte
}

func pbkdf2Digest(s Scheme) (func() hash.Hash, int) {
	switch s {
	case SchemePBKDF2SHA1:
		return sha1.New, sha1.Size
	case SchemePBKDF2SHA256:
		return sha256.New, sha256.Size
	default:
		return sha512.New, sha512.Size
	}
}

func parsePBKDF2(s string, sch Scheme, lenient bool) (storedHash, error) {
	f, err := splitFields(s, sch, 5)
	if err != nil {
		return nil, err
	}
	v, err := parseParams(sch, f[2], "i")
	if err != nil {
		return nil, err
	}
	i, err := parseDec(sch, "i", v[0], 1, 1<<31-1)
	if err != nil {
		return nil, err
	}
	salt, key, err := saltAndKey(sch, f[3], f[4], 1, lenient)
	if err != nil {
		return nil, err
	}
	return &pbkdf2Hash{variant: sch, iterations: int(i), salt: salt, key: key}, nil
}

func (p *pbkdf2Hash) scheme() Scheme { return p.variant }

func (p *pbkdf2Hash) checkLimits(l Limits) error {
	_, size := pbkdf2Digest(p.variant)
	blocks := int64((len(p.key) + size - 1) / size)
	if err := overLimit(p.variant, "i", int64(p.iterations)*blocks, int64(l.MaxPBKDF2Iterations)); err != nil {
		return err
	}
	return checkSaltKey(p.variant, l, len(p.salt), len(p.key))
}

func (p *pbkdf2Hash) verify(password string) (bool, error) {
	h, _ := pbkdf2Digest(p.variant)
	dk, err := pbkdf2.Key(h, password, p.salt, p.iterations, len(p.key))
	if err != nil {
		return false, fmt.Errorf("password: %s: %w", p.variant, err)
	}
	return subtle.ConstantTimeCompare(dk, p.key) == 1, nil
}

func (p *pbkdf2Hash) String() string {
	return fmt.Sprintf("$%s$i=%d$%s$%s", p.variant, p.iterations, enc(p.salt), enc(p.key))
}

// ---- scrypt ---------------------------------------------------------------

// Structural bounds (independent of Limits) keep the arithmetic in range.
const (
	maxScryptLogN = 32
	maxScryptR    = 1 << 16
	maxScryptP    = 1 << 16
)

type scryptHash struct {
	logN int
	r, p int
	salt []byte
	key  []byte
}

func parseScrypt(s string, lenient bool) (storedHash, error) {
	sch := SchemeScrypt
	f, err := splitFields(s, sch, 5)
	if err != nil {
		return nil, err
	}
	v, err := parseParams(sch, f[2], "ln", "r", "p")
	if err != nil {
		return nil, err
	}
	ln, err := parseDec(sch, "ln", v[0], 1, maxScryptLogN)
	if err != nil {
		return nil, err
	}
	r, err := parseDec(sch, "r", v[1], 1, maxScryptR)
	if err != nil {
		return nil, err
	}
	p, err := parseDec(sch, "p", v[2], 1, maxScryptP)
	if err != nil {
		return nil, err
	}
	if r*p >= 1<<30 {
		return nil, malformed(sch, "r*p must be below 2^30")
	}
	salt, key, err := saltAndKey(sch, f[3], f[4], 1, lenient)
	if err != nil {
		return nil, err
	}
	return &scryptHash{logN: int(ln), r: int(r), p: int(p), salt: salt, key: key}, nil
}

func (s *scryptHash) scheme() Scheme { return SchemeScrypt }

// scryptMemoryKiB is scrypt's working memory, 128·r·N bytes, in KiB.
func scryptMemoryKiB(logN, r int) int64 {
	return int64(r) << logN / 8
}

func (s *scryptHash) checkLimits(l Limits) error {
	if err := overLimit(SchemeScrypt, "memory (KiB, 128*r*2^ln)", scryptMemoryKiB(s.logN, s.r), int64(l.MaxMemoryKiB)); err != nil {
		return err
	}
	if err := overLimit(SchemeScrypt, "p", int64(s.p), int64(l.MaxParallelism)); err != nil {
		return err
	}
	return checkSaltKey(SchemeScrypt, l, len(s.salt), len(s.key))
}

func (s *scryptHash) verify(password string) (bool, error) {
	dk, err := scrypt.Key([]byte(password), s.salt, 1<<s.logN, s.r, s.p, len(s.key))
	if err != nil {
		return false, fmt.Errorf("password: scrypt: %w", err)
	}
	return subtle.ConstantTimeCompare(dk, s.key) == 1, nil
}

func (s *scryptHash) String() string {
	return fmt.Sprintf("$scrypt$ln=%d,r=%d,p=%d$%s$%s", s.logN, s.r, s.p, enc(s.salt), enc(s.key))
}

// ---- Firebase modified scrypt ----------------------------------------------

// firebaseHash is Firebase Authentication's scrypt variant
// (github.com/firebase/scrypt): key = scrypt(password, salt‖saltSeparator,
// N=2^memCost, r=rounds, p=1) truncated to 32 bytes; the stored hash is
// AES-256-CTR(key, IV=0) applied to the project's signer key.
type firebaseHash struct {
	logN      int // Firebase "mem_cost"
	r         int // Firebase "rounds"
	separator []byte
	signerKey []byte
	salt      []byte
	key       []byte
}

func parseFirebase(s string, lenient bool) (storedHash, error) {
	sch := SchemeFirebaseScrypt
	f, err := splitFields(s, sch, 5)
	if err != nil {
		return nil, err
	}
	v, err := parseParams(sch, f[2], "ln", "r", "ss", "sk")
	if err != nil {
		return nil, err
	}
	ln, err := parseDec(sch, "ln", v[0], 1, maxScryptLogN)
	if err != nil {
		return nil, err
	}
	r, err := parseDec(sch, "r", v[1], 1, maxScryptR)
	if err != nil {
		return nil, err
	}
	sep, ok := decodeB64(v[2], lenient)
	if !ok {
		return nil, malformed(sch, "ss (salt separator) is not valid unpadded base64")
	}
	sk, ok := decodeB64(v[3], lenient)
	if !ok || len(sk) == 0 {
		return nil, malformed(sch, "sk (signer key) is not valid non-empty unpadded base64")
	}
	salt, key, err := saltAndKey(sch, f[3], f[4], 1, lenient)
	if err != nil {
		return nil, err
	}
	if len(key) != len(sk) {
		return nil, malformed(sch, "hash length %d differs from signer key length %d", len(key), len(sk))
	}
	return &firebaseHash{logN: int(ln), r: int(r), separator: sep, signerKey: sk, salt: salt, key: key}, nil
}

func (fb *firebaseHash) scheme() Scheme { return SchemeFirebaseScrypt }

func (fb *firebaseHash) checkLimits(l Limits) error {
	sch := SchemeFirebaseScrypt
	if err := overLimit(sch, "memory (KiB, 128*r*2^ln)", scryptMemoryKiB(fb.logN, fb.r), int64(l.MaxMemoryKiB)); err != nil {
		return err
	}
	if err := overLimit(sch, "salt separator length", int64(len(fb.separator)), int64(l.MaxSaltBytes)); err != nil {
		return err
	}
	return checkSaltKey(sch, l, len(fb.salt), len(fb.key))
}

func (fb *firebaseHash) verify(password string) (bool, error) {
	salt := make([]byte, 0, len(fb.salt)+len(fb.separator))
	salt = append(append(salt, fb.salt...), fb.separator...)
	dk, err := scrypt.Key([]byte(password), salt, 1<<fb.logN, fb.r, 1, 32)
	if err != nil {
		return false, fmt.Errorf("password: firebase-scrypt: %w", err)
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return false, fmt.Errorf("password: firebase-scrypt: %w", err)
	}
	out := make([]byte, len(fb.signerKey))
	cipher.NewCTR(block, make([]byte, aes.BlockSize)).XORKeyStream(out, fb.signerKey)
	return subtle.ConstantTimeCompare(out, fb.key) == 1, nil
}

func (fb *firebaseHash) String() string {
	return fmt.Sprintf("$firebase-scrypt$ln=%d,r=%d,ss=%s,sk=%s$%s$%s",
		fb.logN, fb.r, enc(fb.separator), enc(fb.signerKey), enc(fb.salt), enc(fb.key))
}
