package password

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// ImportRecord holds the password-hash columns of one imported user (the
// importer owns the other columns such as email and user_id). JSON keys and
// CSV header names are the same; see FORMATS.md for each hash_format.
type ImportRecord struct {
	// HashFormat selects the interpretation: "phc" (or empty), "argon2id",
	// "argon2i", "bcrypt", "zumo", "pbkdf2", "pbkdf2-sha1", "pbkdf2-sha256",
	// "pbkdf2-sha512", "scrypt", "firebase-scrypt".
	HashFormat string `json:"hash_format"`
	// Hash is the stored hash: a full hash string for phc/argon2/bcrypt (and
	// optionally scrypt), otherwise the encoded derived key.
	Hash string `json:"hash"`
	// HashEncoding of a raw derived key: "base64" (default) or "hex".
	HashEncoding string `json:"hash_encoding,omitempty"`
	// Salt as stored by the old system.
	Salt string `json:"salt,omitempty"`
	// SaltEncoding says how Salt becomes the salt bytes: "utf8" (the text's
	// own bytes, as the classic Mobile Services scripts did), "base64"
	// (standard or URL alphabet, padding optional) or "hex".
	SaltEncoding string `json:"salt_encoding,omitempty"`
	// Digest for PBKDF2: "sha1", "sha256" or "sha512".
	Digest string `json:"digest,omitempty"`
	// Iterations for PBKDF2.
	Iterations int `json:"iterations,omitempty"`
	// KeyLength, optional: the expected derived-key length in bytes, checked
	// against the decoded hash.
	KeyLength int `json:"key_length,omitempty"`
	// ScryptN (a power of two), ScryptR, ScryptP for plain scrypt.
	ScryptN int `json:"scrypt_n,omitempty"`
	ScryptR int `json:"scrypt_r,omitempty"`
	ScryptP int `json:"scrypt_p,omitempty"`
	// Firebase project hash parameters (base64 as shown in the console).
	SignerKey     string `json:"signer_key,omitempty"`
	SaltSeparator string `json:"salt_separator,omitempty"`
	Rounds        int    `json:"rounds,omitempty"`
	MemCost       int    `json:"mem_cost,omitempty"`
}

// Import field names (JSON keys and CSV headers).
const (
	fHashFormat    = "hash_format"
	fHash          = "hash"
	fHashEncoding  = "hash_encoding"
	fSalt          = "salt"
	fSaltEncoding  = "salt_encoding"
	fDigest        = "digest"
	fIterations    = "iterations"
	fKeyLength     = "key_length"
	fScryptN       = "scrypt_n"
	fScryptR       = "scrypt_r"
	fScryptP       = "scrypt_p"
	fSignerKey     = "signer_key"
	fSaltSeparator = "salt_separator"
	fRounds        = "rounds"
	fMemCost       = "mem_cost"
)

// importFields lists the column names ParseImportRecord understands.
var importFields = []string{
	fHashFormat, fHash, fHashEncoding, fSalt, fSaltEncoding, fDigest, fIterations, fKeyLength,
	fScryptN, fScryptR, fScryptP, fSignerKey, fSaltSeparator, fRounds, fMemCost,
}

// ImportFields returns the column names (CSV headers / JSON keys) of
// ImportRecord.
func ImportFields() []string { return slices.Clone(importFields) }

// ParseImportRecord builds an ImportRecord from CSV-style string columns
// keyed by header name. Columns it does not know (email, user_id, ...) are
// ignored; empty values mean "not given". Every unparsable number is
// reported in the returned *ImportError.
func ParseImportRecord(cols map[string]string) (ImportRecord, error) {
	var rec ImportRecord
	var errs []FieldError
	num := func(name string, dst *int) {
		v := strings.TrimSpace(cols[name])
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, FieldError{name, "not a non-negative integer"})
			return
		}
		*dst = n
	}
	rec.HashFormat = cols[fHashFormat]
	rec.Hash = cols[fHash]
	rec.HashEncoding = cols[fHashEncoding]
	rec.Salt = cols[fSalt]
	rec.SaltEncoding = cols[fSaltEncoding]
	rec.Digest = cols[fDigest]
	rec.SignerKey = cols[fSignerKey]
	rec.SaltSeparator = cols[fSaltSeparator]
	num(fIterations, &rec.Iterations)
	num(fKeyLength, &rec.KeyLength)
	num(fScryptN, &rec.ScryptN)
	num(fScryptR, &rec.ScryptR)
	num(fScryptP, &rec.ScryptP)
	num(fRounds, &rec.Rounds)
	num(fMemCost, &rec.MemCost)
	if len(errs) > 0 {
		return rec, &ImportError{Fields: errs}
	}
	return rec, nil
}

// The classic Mobile Services custom-auth scripts: crypto.pbkdf2 with Node's
// then-default SHA-1, the salt string's own bytes, 1000 iterations, 32 bytes,
// base64 output.
const (
	zumoIterations = 1000
	zumoKeyLength  = 32
)

// FromImport converts one import record into the canonical stored string
// (see FORMATS.md) after validating it. Every problem is reported as a
// FieldError inside an *ImportError (errors.Is(err, ErrInvalidImport)).
// FromImport checks structure only; call Hasher.Inspect on the result to
// apply the configured Limits (Hasher.Import does both).
func FromImport(rec ImportRecord) (string, error) {
	im := &importer{rec: rec}
	s := im.convert()
	if len(im.errs) > 0 {
		return "", &ImportError{Fields: im.errs}
	}
	// Safety net: the canonical string must parse back strictly.
	if _, err := parseStored(s, false); err != nil {
		return "", &ImportError{Fields: []FieldError{{fHash, errMsg(err)}}}
	}
	return s, nil
}

// Import is FromImport followed by the Limits check of Inspect, so rows the
// server would refuse at login are refused at import time.
func (h *Hasher) Import(rec ImportRecord) (string, error) {
	s, err := FromImport(rec)
	if err != nil {
		return "", err
	}
	if _, err := h.Inspect(s); err != nil {
		return "", &ImportError{Fields: []FieldError{{fHash, errMsg(err)}}}
	}
	return s, nil
}

type importer struct {
	rec  ImportRecord
	errs []FieldError
}

func (im *importer) fail(field, format string, args ...any) {
	im.errs = append(im.errs, FieldError{field, fmt.Sprintf(format, args...)})
}

func errMsg(err error) string { return strings.TrimPrefix(err.Error(), "password: ") }

// setFields returns the names of the non-empty fields other than hash_format.
func (im *importer) setFields() []string {
	r := im.rec
	var out []string
	add := func(name string, set bool) {
		if set {
			out = append(out, name)
		}
	}
	add(fHash, r.Hash != "")
	add(fHashEncoding, r.HashEncoding != "")
	add(fSalt, r.Salt != "")
	add(fSaltEncoding, r.SaltEncoding != "")
	add(fDigest, r.Digest != "")
	add(fIterations, r.Iterations != 0)
	add(fKeyLength, r.KeyLength != 0)
	add(fScryptN, r.ScryptN != 0)
	add(fScryptR, r.ScryptR != 0)
	add(fScryptP, r.ScryptP != 0)
	add(fSignerKey, r.SignerKey != "")
	add(fSaltSeparator, r.SaltSeparator != "")
	add(fRounds, r.Rounds != 0)
	add(fMemCost, r.MemCost != 0)
	return out
}

// onlyFields reports every set field not in allowed: a value in a column the
// format ignores is almost always a mapping mistake.
func (im *importer) onlyFields(format string, allowed ...string) {
	for _, f := range im.setFields() {
		if !slices.Contains(allowed, f) {
			im.fail(f, "not used by hash_format %q", format)
		}
	}
}

func (im *importer) convert() string {
	format := strings.ToLower(strings.TrimSpace(im.rec.HashFormat))
	switch format {
	case "", "phc":
		im.onlyFields("phc", fHash)
		return im.phc("")
	case "argon2id", "argon2i", "bcrypt":
		im.onlyFields(format, fHash)
		return im.phc(Scheme(format))
	case "zumo":
		return im.pbkdf2(format, "")
	case "pbkdf2", "pbkdf2-sha1", "pbkdf2-sha256", "pbkdf2-sha512":
		return im.pbkdf2(format, strings.TrimPrefix(strings.TrimPrefix(format, "pbkdf2"), "-"))
	case "scrypt":
		if strings.HasPrefix(im.rec.Hash, "$") {
			im.onlyFields(format, fHash)
			return im.phc(SchemeScrypt)
		}
		return im.scrypt()
	case "firebase-scrypt":
		return im.firebase()
	}
	im.fail(fHashFormat, "unknown format (want phc, argon2id, argon2i, bcrypt, zumo, pbkdf2, pbkdf2-sha1, pbkdf2-sha256, pbkdf2-sha512, scrypt or firebase-scrypt)")
	return ""
}

// phc imports a complete hash string, optionally requiring a scheme.
func (im *importer) phc(want Scheme) string {
	s := strings.TrimSpace(im.rec.Hash)
	if s == "" {
		im.fail(fHash, "required")
		return ""
	}
	sh, err := parseStored(s, true)
	if err != nil {
		im.fail(fHash, "%s", errMsg(err))
		return ""
	}
	if want != "" && sh.scheme() != want {
		im.fail(fHash, "is a %s hash, not %s", sh.scheme(), want)
		return ""
	}
	return sh.String()
}

func (im *importer) pbkdf2(format, digest string) string {
	r := im.rec
	im.onlyFields(format, fHash, fHashEncoding, fSalt, fSaltEncoding, fDigest, fIterations, fKeyLength)
	saltEnc, iterations, keyLength := r.SaltEncoding, r.Iterations, r.KeyLength
	if format == "zumo" { // presets; explicit columns override them (variants)
		digest = "sha1"
		if r.Digest != "" {
			digest = ""
		}
		saltEnc = orDefault(saltEnc, "utf8")
		iterations = orDefaultInt(iterations, zumoIterations)
		keyLength = orDefaultInt(keyLength, zumoKeyLength)
	}
	given := normDigest(r.Digest)
	switch {
	case digest == "" && r.Digest == "":
		im.fail(fDigest, "required (sha1, sha256 or sha512)")
	case digest == "":
		digest = given
	case r.Digest != "" && given != digest:
		im.fail(fDigest, "%q contradicts hash_format %q", r.Digest, format)
	}
	var sch Scheme
	switch digest {
	case "sha1":
		sch = SchemePBKDF2SHA1
	case "sha256":
		sch = SchemePBKDF2SHA256
	case "sha512":
		sch = SchemePBKDF2SHA512
	case "":
	default:
		im.fail(fDigest, "unsupported digest (want sha1, sha256 or sha512)")
	}
	if iterations < 1 {
		im.fail(fIterations, "required, at least 1")
	}
	if saltEnc == "" {
		im.fail(fSaltEncoding, "required for PBKDF2 (utf8, base64 or hex)")
	}
	salt := im.bytes(fSalt, r.Salt, saltEnc, true)
	key := im.key(keyLength)
	if len(im.errs) > 0 {
		return ""
	}
	return (&pbkdf2Hash{variant: sch, iterations: iterations, salt: salt, key: key}).String()
}

func (im *importer) scrypt() string {
	r := im.rec
	im.onlyFields("scrypt", fHash, fHashEncoding, fSalt, fSaltEncoding, fScryptN, fScryptR, fScryptP, fKeyLength)
	logN := 0
	switch n := r.ScryptN; {
	case n == 0:
		im.fail(fScryptN, "required (or give a $scrypt$ PHC string in hash)")
	case n < 2 || n&(n-1) != 0 || n > 1<<maxScryptLogN:
		im.fail(fScryptN, "must be a power of two between 2 and 2^%d", maxScryptLogN)
	default:
		logN = bits.TrailingZeros(uint(n))
	}
	if r.ScryptR < 1 || r.ScryptR > maxScryptR {
		im.fail(fScryptR, "required, between 1 and %d", maxScryptR)
	}
	if r.ScryptP < 1 || r.ScryptP > maxScryptP {
		im.fail(fScryptP, "required, between 1 and %d", maxScryptP)
	}
	salt := im.bytes(fSalt, r.Salt, orDefault(r.SaltEncoding, "base64"), true)
	key := im.key(r.KeyLength)
	if len(im.errs) > 0 {
		return ""
	}
	return (&scryptHash{logN: logN, r: r.ScryptR, p: r.ScryptP, salt: salt, key: key}).String()
}

func (im *importer) firebase() string {
	r := im.rec
	im.onlyFields("firebase-scrypt", fHash, fSalt, fSignerKey, fSaltSeparator, fRounds, fMemCost)
	if r.Rounds < 1 || r.Rounds > maxScryptR {
		im.fail(fRounds, "required, between 1 and %d", maxScryptR)
	}
	if r.MemCost < 1 || r.MemCost > maxScryptLogN {
		im.fail(fMemCost, "required, between 1 and %d", maxScryptLogN)
	}
	sk := im.bytes(fSignerKey, r.SignerKey, "base64", true)
	sep := im.bytes(fSaltSeparator, r.SaltSeparator, "base64", true)
	salt := im.bytes(fSalt, r.Salt, "base64", true)
	key := im.bytes(fHash, r.Hash, "base64", true)
	if len(im.errs) > 0 {
		return ""
	}
	if len(key) != len(sk) {
		im.fail(fHash, "decodes to %d bytes but signer_key to %d; they must be equal", len(key), len(sk))
		return ""
	}
	return (&firebaseHash{logN: r.MemCost, r: r.Rounds, separator: sep, signerKey: sk, salt: salt, key: key}).String()
}

// key decodes the hash column as a raw derived key and checks key_length.
func (im *importer) key(keyLength int) []byte {
	key := im.bytes(fHash, im.rec.Hash, orDefault(im.rec.HashEncoding, "base64"), true)
	if key == nil {
		return nil
	}
	if len(key) < minKeyLength {
		im.fail(fHash, "decodes to %d bytes, at least %d required", len(key), minKeyLength)
	}
	if keyLength != 0 && keyLength != len(key) {
		im.fail(fKeyLength, "is %d but hash decodes to %d bytes", keyLength, len(key))
	}
	return key
}

// bytes decodes value with encoding (utf8, base64, base64url, hex).
func (im *importer) bytes(field, value, encoding string, required bool) []byte {
	if value == "" {
		if required {
			im.fail(field, "required")
		}
		return nil
	}
	encField := fSaltEncoding
	if field == fHash {
		encField = fHashEncoding
	}
	var b []byte
	var err error
	switch strings.ToLower(encoding) {
	case "utf8", "utf-8":
		if field == fHash {
			im.fail(encField, "utf8 is not a hash encoding (want base64 or hex)")
			return nil
		}
		b = []byte(value)
	case "base64", "base64url", "b64":
		var ok bool
		if b, ok = decodeB64Lenient(strings.TrimSpace(value)); !ok {
			err = errors.New("not valid base64")
		}
	case "hex":
		b, err = hex.DecodeString(strings.TrimSpace(value))
		if err != nil {
			err = errors.New("not valid hex")
		}
	case "":
		return nil // reported by the caller
	default:
		im.fail(encField, "unknown encoding %q (want utf8, base64 or hex)", encoding)
		return nil
	}
	if err != nil {
		im.fail(field, "%s", err)
		return nil
	}
	if len(b) == 0 && required {
		im.fail(field, "decodes to zero bytes")
		return nil
	}
	return b
}

func normDigest(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "hmac-")
	return strings.ReplaceAll(s, "-", "")
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orDefaultInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
