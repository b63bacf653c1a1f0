package password

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Policy is the password and email policy (NIST SP 800-63B §5.1.1.2): a
// minimum length, a generous maximum, Unicode NFKC normalization, and no
// composition rules. The zero value is usable and means DefaultPolicy.
type Policy struct {
	// MinLength is the minimum password length in Unicode code points after
	// normalization. Default 8 (the classic Mobile Services tutorial used 7).
	MinLength int
	// MaxBytes is the maximum password length in UTF-8 bytes, checked both
	// before and after normalization. Default 1024.
	MaxBytes int
	// AllowDotlessDomain accepts email domains without a dot
	// ("admin@intranet"). Off by default: on the public Internet a dot-less
	// domain is nearly always a typo ("user@gmail").
	AllowDotlessDomain bool
}

const (
	defaultMinLength = 8
	defaultMaxBytes  = 1024
	maxEmailBytes    = 254 // RFC 5321 path limit minus the angle brackets
	maxLocalBytes    = 64
	maxDomainBytes   = 253
	maxLabelBytes    = 63
)

// DefaultPolicy returns MinLength 8, MaxBytes 1024, dot-less domains refused.
func DefaultPolicy() Policy { return Policy{MinLength: defaultMinLength, MaxBytes: defaultMaxBytes} }

func (p Policy) withDefaults() Policy {
	if p.MinLength <= 0 {
		p.MinLength = defaultMinLength
	}
	if p.MaxBytes <= 0 {
		p.MaxBytes = defaultMaxBytes
	}
	return p
}

// NormalizePassword validates and normalizes a password being set
// (registration, reset, change): it must be valid UTF-8 and at most MaxBytes
// bytes; it is NFKC-normalized; the result must be at most MaxBytes bytes
// and at least MinLength code points. Nothing else is required or removed:
// spaces, emoji and any other characters are allowed. Hash the returned
// string.
func (p Policy) NormalizePassword(s string) (string, error) {
	p = p.withDefaults()
	n, err := p.normalize(s)
	if err != nil {
		return "", err
	}
	if utf8.RuneCountInString(n) < p.MinLength {
		return "", &PolicyError{Field: "password", Err: ErrPasswordTooShort, Limit: p.MinLength,
			Reason: "at least " + strconv.Itoa(p.MinLength) + " characters are required"}
	}
	return n, nil
}

// NormalizeLoginPassword normalizes a password presented at login exactly
// like NormalizePassword but without the minimum length, so accounts created
// under an older, shorter minimum (or imported) can still log in. Pass the
// result to Hasher.VerifyAndUpgrade.
//
// Imported legacy hashes were computed over whatever bytes the old system
// received; for the rare password that NFKC changes (compatibility
// characters such as "ﬁ" or fullwidth forms, decomposed accents) the
// normalized string will not match such a hash and the user must reset.
func (p Policy) NormalizeLoginPassword(s string) (string, error) {
	return p.withDefaults().normalize(s)
}

func (p Policy) normalize(s string) (string, error) {
	if len(s) > p.MaxBytes {
		return "", tooLong(p.MaxBytes)
	}
	if !utf8.ValidString(s) {
		return "", &PolicyError{Field: "password", Err: ErrPasswordEncoding}
	}
	n := norm.NFKC.String(s)
	if len(n) > p.MaxBytes {
		return "", tooLong(p.MaxBytes)
	}
	return n, nil
}

func tooLong(maxBytes int) error {
	return &PolicyError{Field: "password", Err: ErrPasswordTooLong, Limit: maxBytes,
		Reason: "at most " + strconv.Itoa(maxBytes) + " bytes are allowed"}
}

// NormalizeEmail validates an email address and returns its normalized
// form. The profile (issue 10 finding 17; docs/security.md "Email addresses"):
//
//  1. Surrounding white space is trimmed; the rest must be valid UTF-8.
//  2. Refused anywhere: control characters, format characters (zero-width
//     space and joiners U+200B–U+200D, soft hyphen U+00AD, bidi controls
//     U+202A–U+202E and U+2066–U+2069, BOM), every other default-ignorable
//     code point (variation selectors, Hangul fillers, U+034F), white space
//     and separators, private-use and surrogate code points, U+FFFD. These
//     are invisible or reorder text, so they made addresses that look the
//     same but were distinct accounts; they are refused, not silently
//     removed, so nobody gets an account they cannot type again.
//  3. Fullwidth and halfwidth forms are mapped to their ordinary forms
//     (PRECIS width mapping, RFC 8264 §9.3): "ｕｓｅｒ＠ｅｘａｍｐｌｅ．ｃｏｍ" is
//     user@example.com. Then Unicode NFC.
//  4. The local part must pass PRECIS UsernameCasePreserved (RFC 8265 §3.4:
//     IdentifierClass, so letters, digits and ASCII symbols, no other
//     symbols, punctuation or unassigned code points; the bidi rule) and the
//     dot-atom rules below; it is kept in its case (it is where mail goes).
//  5. The domain goes through IDNA 2008 / UTS #46 lookup processing (mapping,
//     case folding, validity, bidi and joiner rules): "Bücher.DE" and
//     "xn--bcher-kva.de" are the same domain, stored in its Unicode form,
//     lower case.
//
// Accepted: a single addr-spec "local@domain" of at most 254 bytes; a
// dot-atom local part of at most 64 bytes (RFC 5322 atext, plus non-ASCII
// UTF-8 per RFC 6531); a domain of LDH labels (non-ASCII letters allowed for
// internationalized names) of at most 63 bytes each, containing a dot unless
// AllowDotlessDomain, whose last label is not all digits. Refused: display
// names, angle brackets, comments, quoted local parts, IP-literal domains.
//
// Uniqueness is case-insensitive: store and index EmailKey(normalized).
func (p Policy) NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", emailErr(ErrEmailInvalid, "not valid UTF-8")
	}
	if s == "" {
		return "", emailErr(ErrEmailInvalid, "empty")
	}
	if len(s) > 4*maxEmailBytes {
		return "", &PolicyError{Field: "email", Err: ErrEmailTooLong, Limit: maxEmailBytes,
			Reason: "at most " + strconv.Itoa(maxEmailBytes) + " bytes are allowed"}
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", emailErr(ErrEmailInvalid, "contains white space or control characters")
		}
		if invisible(r) {
			return "", emailErr(ErrEmailInvalid, fmt.Sprintf("contains an invisible or formatting character (U+%04X)", r))
		}
	}
	s = norm.NFC.String(width.Fold.String(s))
	if len(s) > maxEmailBytes {
		return "", &PolicyError{Field: "email", Err: ErrEmailTooLong, Limit: maxEmailBytes,
			Reason: "at most " + strconv.Itoa(maxEmailBytes) + " bytes are allowed"}
	}
	if strings.Count(s, "@") != 1 {
		return "", emailErr(ErrEmailInvalid, "must have the form name@domain")
	}
	local, domain, _ := strings.Cut(s, "@")
	if local != "" {
		pl, err := precis.UsernameCasePreserved.String(local)
		if err != nil || pl != local {
			return "", emailErr(ErrEmailInvalid, "the part before @ contains characters not allowed in an address")
		}
	}
	if err := checkLocal(local); err != nil {
		return "", err
	}
	if domain == "" {
		return "", emailErr(ErrEmailInvalid, "missing the domain after @")
	}
	ascii, err := emailIDNA.ToASCII(domain)
	if err != nil {
		return "", emailErr(ErrEmailInvalid, "the domain is not a valid (internationalized) domain name")
	}
	if len(ascii) > maxDomainBytes {
		return "", emailErr(ErrEmailInvalid, "the domain is longer than 253 bytes")
	}
	if domain, err = emailIDNA.ToUnicode(ascii); err != nil {
		return "", emailErr(ErrEmailInvalid, "the domain is not a valid (internationalized) domain name")
	}
	domain = strings.ToLower(norm.NFC.String(domain))
	if err := p.checkDomain(domain); err != nil {
		return "", err
	}
	out := local + "@" + domain
	if len(out) > maxEmailBytes {
		return "", &PolicyError{Field: "email", Err: ErrEmailTooLong, Limit: maxEmailBytes,
			Reason: "at most " + strconv.Itoa(maxEmailBytes) + " bytes are allowed"}
	}
	return out, nil
}

// emailIDNA is UTS #46 lookup processing with the IDNA 2008 validity checks.
var emailIDNA = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true), idna.StrictDomainName(true), idna.CheckHyphens(true), idna.CheckJoiners(true))

// invisible reports code points that display as nothing (or reorder the text around them): format
// characters (Cf), other default-ignorable code points, variation selectors, Hangul fillers,
// private use, surrogates and U+FFFD.
func invisible(r rune) bool {
	switch r {
	case unicode.ReplacementChar, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x034F:
		return true
	}
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Variation_Selector, r) || unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r) ||
		unicode.Is(unicode.Zs, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r)
}

// EmailKey returns the case-insensitive uniqueness key of an address
// returned by NormalizeEmail: the whole address lower-cased (Unicode simple
// lower-casing). Two addresses are "the same account" iff their keys are
// equal. (Mail servers may treat local parts case-sensitively; nobody
// relies on it, and two accounts differing only in case are a classic
// account-takeover vector.)
func EmailKey(normalized string) string { return strings.ToLower(normalized) }

const atextSpecials = "!#$%&'*+-/=?^_`{|}~"

func checkLocal(local string) error {
	switch {
	case local == "":
		return emailErr(ErrEmailInvalid, "missing the part before @")
	case len(local) > maxLocalBytes:
		return emailErr(ErrEmailInvalid, "the part before @ is longer than 64 bytes")
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return emailErr(ErrEmailInvalid, "dots in the part before @ must separate non-empty words")
	}
	for _, r := range local {
		ok := r == '.' || r >= utf8.RuneSelf ||
			('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') ||
			strings.ContainsRune(atextSpecials, r)
		if !ok {
			return emailErr(ErrEmailInvalid, "the part before @ contains a character that needs quoting")
		}
	}
	return nil
}

func (p Policy) checkDomain(domain string) error {
	if domain == "" {
		return emailErr(ErrEmailInvalid, "missing the domain after @")
	}
	if len(domain) > maxDomainBytes {
		return emailErr(ErrEmailInvalid, "the domain is longer than 253 bytes")
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 && !p.AllowDotlessDomain {
		return emailErr(ErrEmailInvalid, "the domain must contain a dot")
	}
	for _, l := range labels {
		if l == "" || len(l) > maxLabelBytes {
			return emailErr(ErrEmailInvalid, "the domain has an empty or over-long label")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return emailErr(ErrEmailInvalid, "a domain label starts or ends with a hyphen")
		}
		for _, r := range l {
			ok := r == '-' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') ||
				(r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)))
			if !ok {
				return emailErr(ErrEmailInvalid, "the domain contains an invalid character")
			}
		}
	}
	if strings.TrimLeft(labels[len(labels)-1], "0123456789") == "" {
		return emailErr(ErrEmailInvalid, "the domain must be a name, not an IP address")
	}
	return nil
}

func emailErr(sentinel error, reason string) error {
	return &PolicyError{Field: "email", Err: sentinel, Reason: reason}
}
