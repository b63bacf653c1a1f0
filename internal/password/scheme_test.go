package password

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Reference PHC strings from the Argon2 reference implementation's test
// suite (phc-winner-argon2 src/test.c, v=19 section): password "password",
// salt "somesalt".
var argon2Reference = []struct {
	stored   string
	password string
	big      bool // 64 MiB: skipped with -short
}{
	{"$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8", "password", false},
	{"$argon2i$v=19$m=256,t=2,p=2$c29tZXNhbHQ$T/XOJ2mh1/TIpJHfCdQan76Q5esCFVoT5MAeIM1Oq2E", "password", false},
	{"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "password", false},
	{"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc", "password", false},
	{"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password", true},
}

// Openwall crypt_blowfish / OpenBSD bcrypt vectors.
var bcryptReference = []struct{ stored, password string }{
	{"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
	{"$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*"},
	{"$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", "U*U*U"},
	{"$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", ""},
	{"$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui", "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"},
	// Only the first 72 bytes count.
	{"$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui", "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"},
	{"$2b$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq", "\xa3"},
	// $2y$ (PHP) is the same algorithm as $2b$.
	{"$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq", "\xa3"},
}

// TestKnownVectors verifies every supported scheme against independently
// produced hashes, with the right password and with wrong ones.
func TestKnownVectors(t *testing.T) {
	h := newTestHasher(t, Config{})
	ctx := context.Background()
	v := loadVectors(t)

	type tc struct {
		name, stored, password string
		scheme                 Scheme
	}
	var cases []tc
	for _, r := range argon2Reference {
		if r.big && testing.Short() {
			continue
		}
		sch := SchemeArgon2id
		if strings.HasPrefix(r.stored, "$argon2i$") {
			sch = SchemeArgon2i
		}
		cases = append(cases, tc{"argon2 " + r.stored[:30], r.stored, r.password, sch})
	}
	for i, r := range bcryptReference {
		cases = append(cases, tc{"bcrypt " + string(rune('a'+i)), r.stored, r.password, SchemeBcrypt})
	}
	for _, c := range v.ZumoClassic {
		s := mustImport(t, ImportRecord{HashFormat: "zumo", Hash: c.Hash, Salt: c.Salt})
		cases = append(cases, tc{"zumo " + c.Password, s, c.Password, SchemePBKDF2SHA1})
	}
	for _, c := range v.PBKDF2 {
		s := mustImport(t, ImportRecord{
			HashFormat: "pbkdf2", Digest: c.Digest, Iterations: c.Iterations, KeyLength: c.KeyLength,
			Salt: c.Salt, SaltEncoding: c.SaltEncoding, Hash: c.Hash,
		})
		cases = append(cases, tc{"pbkdf2 " + c.Digest + " " + c.SaltEncoding, s, c.Password, Scheme("pbkdf2-" + c.Digest)})
	}
	for _, c := range v.Scrypt {
		s := mustImport(t, ImportRecord{
			HashFormat: "scrypt", ScryptN: c.N, ScryptR: c.R, ScryptP: c.P, KeyLength: c.KeyLength,
			Salt: c.Salt, Hash: c.Hash,
		})
		cases = append(cases, tc{"scrypt " + s[:20], s, c.Password, SchemeScrypt})
	}
	cases = append(cases, tc{"firebase", mustImport(t, firebaseRecord()), fbPassword, SchemeFirebaseScrypt})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tries := []string{c.password, "x" + c.password, "wrong password", strings.ToUpper(c.password) + "!"}
			if len(c.password) < 72 { // bcrypt ignores bytes after the 72nd
				tries = append(tries, c.password+"x")
			}
			for _, pw := range tries {
				want := pw == c.password
				res, err := h.Verify(ctx, c.stored, pw)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if res.Match != want {
					t.Errorf("Verify(%q) Match = %v, want %v", pw, res.Match, want)
				}
				if res.Scheme != c.scheme {
					t.Errorf("Scheme = %q, want %q", res.Scheme, c.scheme)
				}
				if !res.NeedsRehash {
					t.Error("a foreign hash must need rehashing")
				}
			}
		})
	}
}

// TestZumoClassicCanonical pins the canonical encoding of a classic row: the
// salt field holds the salt string's own bytes.
func TestZumoClassicCanonical(t *testing.T) {
	c := loadVectors(t).ZumoClassic[0]
	got := mustImport(t, ImportRecord{HashFormat: "zumo", Hash: c.Hash, Salt: c.Salt})
	want := "$pbkdf2-sha1$i=1000$" + enc([]byte(c.Salt)) + "$" + strings.TrimRight(c.Hash, "=")
	if got != want {
		t.Fatalf("canonical = %s\nwant        %s", got, want)
	}
}

func TestParseRoundTrip(t *testing.T) {
	inputs := []string{
		argon2Reference[0].stored, argon2Reference[2].stored, bcryptReference[0].stored,
		"$pbkdf2-sha256$i=10000$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$scrypt$ln=14,r=8,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
		mustImport(t, firebaseRecord()),
	}
	for _, s := range inputs {
		sh, err := parseStored(s, false)
		if err != nil {
			t.Fatalf("parse %s: %v", s, err)
		}
		if got := sh.String(); got != s {
			t.Errorf("round trip:\n got %s\nwant %s", got, s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	cases := []struct {
		name, stored string
		want         error
	}{
		{"empty", "", ErrMalformed},
		{"no dollar", "argon2id$v=19", ErrMalformed},
		{"too long", "$argon2id$" + strings.Repeat("A", 2000), ErrMalformed},
		{"unknown", "$md5$abc", ErrUnsupported},
		{"argon2d", "$argon2d$v=19$m=8,t=1,p=1$ICAgICAgICA$X54KZYxUSfMUihzebb70sKbheabHilo8gsUldrVU4IU", ErrUnsupported},
		{"argon2 v16 implicit", "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ", ErrUnsupported},
		{"argon2 v16 explicit", "$argon2id$v=16$m=256,t=2,p=1$" + salt + "$" + key, ErrUnsupported},
		{"argon2 missing field", "$argon2id$v=19$m=256,t=2,p=1$" + salt, ErrMalformed},
		{"argon2 extra field", "$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key + "$", ErrMalformed},
		{"argon2 bad version", "$argon2id$x=19$m=256,t=2,p=1$" + salt + "$" + key, ErrMalformed},
		{"argon2 param order", "$argon2id$v=19$t=2,m=256,p=1$" + salt + "$" + key, ErrMalformed},
		{"argon2 missing param", "$argon2id$v=19$m=256,t=2$" + salt + "$" + key, ErrMalformed},
		{"argon2 extra param", "$argon2id$v=19$m=256,t=2,p=1,keyid=x$" + salt + "$" + key, ErrMalformed},
		{"argon2 leading zero", "$argon2id$v=19$m=0256,t=2,p=1$" + salt + "$" + key, ErrMalformed},
		{"argon2 negative", "$argon2id$v=19$m=256,t=-2,p=1$" + salt + "$" + key, ErrMalformed},
		{"argon2 plus sign", "$argon2id$v=19$m=256,t=+2,p=1$" + salt + "$" + key, ErrMalformed},
		{"argon2 t=0", "$argon2id$v=19$m=256,t=0,p=1$" + salt + "$" + key, ErrMalformed},
		{"argon2 p=0", "$argon2id$v=19$m=256,t=2,p=0$" + salt + "$" + key, ErrMalformed},
		{"argon2 p>255", "$argon2id$v=19$m=4096,t=2,p=256$" + salt + "$" + key, ErrMalformed},
		{"argon2 m<8p", "$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key, ErrMalformed},
		{"argon2 m overflow", "$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key, ErrMalformed},
		{"argon2 padded b64", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$" + key, ErrMalformed},
		{"argon2 bad b64", "$argon2id$v=19$m=256,t=2,p=1$c29t*XNhbHQ$" + key, ErrMalformed},
		{"argon2 newline in b64", "$argon2id$v=19$m=256,t=2,p=1$c29tZX\nNhbHQ$" + key, ErrMalformed},
		{"argon2 short salt", "$argon2id$v=19$m=256,t=2,p=1$c29tZQ$" + key, ErrMalformed},
		{"argon2 short hash", "$argon2i$v=19$m=8,t=1,p=1$ICAgICAgICA$MKifhakDKOM", ErrMalformed},
		{"bcrypt 2x", "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ErrUnsupported},
		{"bcrypt 2", "$2$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWx", ErrUnsupported},
		{"bcrypt short", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe", ErrMalformed},
		{"bcrypt cost 03", "$2a$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ErrMalformed},
		{"bcrypt cost 32", "$2a$32$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ErrMalformed},
		{"bcrypt cost x", "$2a$0x$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ErrMalformed},
		{"bcrypt bad char", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe=", ErrMalformed},
		{"pbkdf2 no i", "$pbkdf2-sha256$10000$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA", ErrMalformed},
		{"pbkdf2 i=0", "$pbkdf2-sha256$i=0$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA", ErrMalformed},
		{"pbkdf2 empty salt", "$pbkdf2-sha256$i=10$$AAAAAAAAAAAAAAAAAAAAAA", ErrMalformed},
		{"pbkdf2 md5", "$pbkdf2-md5$i=10$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA", ErrUnsupported},
		{"scrypt ln=0", "$scrypt$ln=0,r=8,p=1$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA", ErrMalformed},
		{"scrypt ln=33", "$scrypt$ln=33,r=8,p=1$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA", ErrMalformed},
		{"scrypt rp", "$scrypt$ln=4,r=65536,p=65536$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA", ErrMalformed},
		{"firebase no sk", "$firebase-scrypt$ln=14,r=8,ss=Bw,sk=$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA", ErrMalformed},
		{"firebase key len", "$firebase-scrypt$ln=14,r=8,ss=Bw,sk=AAAAAAAAAAAAAAAAAAAAAAAA$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA", ErrMalformed},
	}
	h := newTestHasher(t, Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.Verify(context.Background(), c.stored, "password")
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if _, err := h.Inspect(c.stored); !errors.Is(err, c.want) {
				t.Fatalf("Inspect err = %v, want %v", err, c.want)
			}
		})
	}
}

// TestLimits: parameters above the ceilings are refused before any hashing,
// so these would-be-huge hashes return immediately.
func TestLimits(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	long := enc(make([]byte, 129))
	cases := []struct {
		name, stored, param string
	}{
		{"argon2 4GiB", "$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key, "m"},
		{"argon2 just over", "$argon2id$v=19$m=65537,t=1,p=1$" + salt + "$" + key, "m"},
		{"argon2 t", "$argon2id$v=19$m=256,t=11,p=1$" + salt + "$" + key, "t"},
		{"argon2 p", "$argon2id$v=19$m=256,t=1,p=9$" + salt + "$" + key, "p"},
		{"argon2 key", "$argon2id$v=19$m=256,t=1,p=1$" + salt + "$" + long, "key length"},
		{"argon2 salt", "$argon2id$v=19$m=256,t=1,p=1$" + enc(make([]byte, 300)) + "$" + key, "salt length"},
		{"bcrypt cost", "$2a$15$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "cost"},
		{"pbkdf2 iterations", "$pbkdf2-sha256$i=2000001$c2FsdA$" + key, "i"},
		{"pbkdf2 blocks", "$pbkdf2-sha1$i=1000000$c2FsdA$" + enc(make([]byte, 64)), "i"},
		{"scrypt memory", "$scrypt$ln=17,r=8,p=1$c2FsdA$" + key, "memory (KiB, 128*r*2^ln)"},
		{"scrypt p", "$scrypt$ln=10,r=8,p=9$c2FsdA$" + key, "p"},
		{"firebase memory", "$firebase-scrypt$ln=20,r=8,ss=Bw,sk=" + key + "$c2FsdA$" + key, "memory (KiB, 128*r*2^ln)"},
	}
	h := newTestHasher(t, Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.Verify(context.Background(), c.stored, "password")
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrLimitExceeded) {
				t.Fatalf("err = %v, want *LimitError", err)
			}
			if le.Param != c.param {
				t.Errorf("Param = %q, want %q", le.Param, c.param)
			}
		})
	}

	// The same hash passes once the ceiling is raised.
	raised := newTestHasher(t, Config{Limits: Limits{MaxBcryptCost: 15}})
	if _, err := raised.Inspect("$2a$15$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"); err != nil {
		t.Fatalf("raised limit: %v", err)
	}
}
