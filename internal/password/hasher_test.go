package password

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
)

var phcArgon2id = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)

func TestHashDefaultParams(t *testing.T) {
	if testing.Short() {
		t.Skip("19 MiB argon2id")
	}
	h, err := NewHasher(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Params() != DefaultParams() {
		t.Fatalf("params = %+v", h.Params())
	}
	ctx := context.Background()
	s, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	m := phcArgon2id.FindStringSubmatch(s)
	if m == nil || m[1] != "19456" || m[2] != "2" || m[3] != "1" {
		t.Fatalf("hash %q is not OWASP argon2id PHC", s)
	}
	if len(m[4]) != 22 || len(m[5]) != 43 { // 16-byte salt, 32-byte key, unpadded
		t.Fatalf("salt/key field lengths %d/%d", len(m[4]), len(m[5]))
	}
	res, err := h.Verify(ctx, s, "correct horse")
	if err != nil || !res.Match || res.NeedsRehash || res.Scheme != SchemeArgon2id {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

func TestHashVerify(t *testing.T) {
	h := newTestHasher(t, Config{})
	ctx := context.Background()
	for _, pw := range []string{"password", "", "pässwörd 😀", strings.Repeat("a", 1024)} {
		s1, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := h.Hash(ctx, pw)
		if s1 == s2 {
			t.Fatal("two hashes of one password are equal: salt not random")
		}
		if !phcArgon2id.MatchString(s1) {
			t.Fatalf("not PHC: %q", s1)
		}
		for _, try := range []struct {
			pw   string
			want bool
		}{{pw, true}, {pw + " ", false}, {"x" + pw, false}} {
			res, err := h.Verify(ctx, s1, try.pw)
			if err != nil {
				t.Fatal(err)
			}
			if res.Match != try.want || res.NeedsRehash {
				t.Errorf("Verify(%.10q) = %+v, want Match %v", try.pw, res, try.want)
			}
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	h := newTestHasher(t, Config{Params: Params{Memory: 64, Time: 1, Threads: 1, SaltLength: 16, KeyLength: 32}})
	salt16, key32 := enc(make([]byte, 16)), enc(make([]byte, 32))
	cases := []struct {
		stored string
		want   bool
	}{
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt16 + "$" + key32, false},
		{"$argon2id$v=19$m=128,t=1,p=1$" + salt16 + "$" + key32, true},
		{"$argon2id$v=19$m=32,t=1,p=1$" + salt16 + "$" + key32, true}, // weaker
		{"$argon2id$v=19$m=64,t=2,p=1$" + salt16 + "$" + key32, true},
		{"$argon2id$v=19$m=64,t=1,p=2$" + salt16 + "$" + key32, true},
		{"$argon2id$v=19$m=64,t=1,p=1$" + enc(make([]byte, 8)) + "$" + key32, true},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt16 + "$" + enc(make([]byte, 64)), true},
		{"$argon2i$v=19$m=64,t=1,p=1$" + salt16 + "$" + key32, true},
		{bcryptReference[0].stored, true},
		{"$pbkdf2-sha256$i=600000$" + salt16 + "$" + key32, true},
	}
	for _, c := range cases {
		info, err := h.Inspect(c.stored)
		if err != nil {
			t.Fatalf("Inspect(%s): %v", c.stored, err)
		}
		if info.NeedsRehash != c.want {
			t.Errorf("NeedsRehash(%s) = %v, want %v", c.stored, info.NeedsRehash, c.want)
		}
	}
}

// legacyFixtures returns one stored hash per non-current format with its
// password.
func legacyFixtures(t *testing.T) map[string][2]string {
	v := loadVectors(t)
	z := v.ZumoClassic[0]
	p256 := v.PBKDF2[2]
	p512 := v.PBKDF2[4]
	sc := v.Scrypt[0]
	return map[string][2]string{
		"zumo classic": {mustImport(t, ImportRecord{HashFormat: "zumo", Hash: z.Hash, Salt: z.Salt}), z.Password},
		"pbkdf2-sha256": {mustImport(t, ImportRecord{HashFormat: "pbkdf2-sha256", Iterations: p256.Iterations,
			Salt: p256.Salt, SaltEncoding: p256.SaltEncoding, Hash: p256.Hash}), p256.Password},
		"pbkdf2-sha512": {mustImport(t, ImportRecord{HashFormat: "pbkdf2-sha512", Iterations: p512.Iterations,
			Salt: p512.Salt, SaltEncoding: p512.SaltEncoding, Hash: p512.Hash}), p512.Password},
		"bcrypt": {bcryptReference[0].stored, bcryptReference[0].password},
		"scrypt": {mustImport(t, ImportRecord{HashFormat: "scrypt", ScryptN: sc.N, ScryptR: sc.R, ScryptP: sc.P,
			Salt: sc.Salt, Hash: sc.Hash}), sc.Password},
		"firebase scrypt": {mustImport(t, firebaseRecord()), fbPassword},
		"argon2i":         {argon2Reference[0].stored, argon2Reference[0].password},
		"argon2id other":  {argon2Reference[2].stored, argon2Reference[2].password},
	}
}

// TestUpgradeFromEveryLegacyFormat: a successful login on any legacy hash
// yields an argon2id hash at the current params that verifies and needs no
// further rehash; a failed login yields nothing.
func TestUpgradeFromEveryLegacyFormat(t *testing.T) {
	h := newTestHasher(t, Config{})
	ctx := context.Background()
	for name, f := range legacyFixtures(t) {
		t.Run(name, func(t *testing.T) {
			stored, pw := f[0], f[1]
			res, err := h.VerifyAndUpgrade(ctx, stored, pw)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Match || !res.NeedsRehash || res.NewHash == "" {
				t.Fatalf("result = %+v", res)
			}
			if !strings.HasPrefix(res.NewHash, "$argon2id$v=19$m=64,t=1,p=1$") {
				t.Fatalf("NewHash = %s", res.NewHash)
			}
			up, err := h.VerifyAndUpgrade(ctx, res.NewHash, pw)
			if err != nil || !up.Match || up.NeedsRehash || up.NewHash != "" || up.Scheme != SchemeArgon2id {
				t.Fatalf("upgraded hash: %+v, %v", up, err)
			}
			bad, err := h.VerifyAndUpgrade(ctx, res.NewHash, pw+"!")
			if err != nil || bad.Match {
				t.Fatalf("upgraded hash accepts a wrong password: %+v, %v", bad, err)
			}

			wrong, err := h.VerifyAndUpgrade(ctx, stored, "not the password")
			if err != nil || wrong.Match || wrong.NewHash != "" || !wrong.NeedsRehash {
				t.Fatalf("wrong password: %+v, %v", wrong, err)
			}
		})
	}
}

func TestVerifyAndUpgradeCurrent(t *testing.T) {
	h := newTestHasher(t, Config{})
	ctx := context.Background()
	s, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.VerifyAndUpgrade(ctx, s, "pw")
	if err != nil || !res.Match || res.NeedsRehash || res.NewHash != "" {
		t.Fatalf("%+v, %v", res, err)
	}
	// Raising the parameters makes the same hash due for an upgrade.
	h2 := newTestHasher(t, Config{Params: Params{Memory: 128, Time: 1, Threads: 1}})
	res, err = h2.VerifyAndUpgrade(ctx, s, "pw")
	if err != nil || !res.Match || !res.NeedsRehash || !strings.Contains(res.NewHash, "m=128,") {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestVerifyAndUpgradeBadStored(t *testing.T) {
	h := newTestHasher(t, Config{})
	ctx := context.Background()
	for stored, want := range map[string]error{
		"":                                  ErrMalformed,
		"plaintext":                         ErrMalformed,
		"$md5$x":                            ErrUnsupported,
		"$2a$31$" + strings.Repeat("C", 53): ErrLimitExceeded,
	} {
		res, err := h.VerifyAndUpgrade(ctx, stored, "pw")
		if !errors.Is(err, want) || res.Match {
			t.Errorf("VerifyAndUpgrade(%q) = %+v, %v; want %v", stored, res, err, want)
		}
	}
}

func TestDummyVerify(t *testing.T) {
	h := newTestHasher(t, Config{})
	if err := h.DummyVerify(context.Background(), "anything"); err != nil {
		t.Fatal(err)
	}
	if h.dummy == nil || h.dummy.memory != cheapParams.Memory || h.dummy.time != 1 {
		t.Fatalf("dummy hash not at current params: %+v", h.dummy)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.DummyVerify(ctx, "anything"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// TestBusyPropagates: every hashing entry point reports ErrBusy when the
// limiter is saturated, so handlers can answer 503/429 uniformly.
func TestBusyPropagates(t *testing.T) {
	l := NewLimiter(1, 0)
	h := newTestHasher(t, Config{Limiter: l})
	if h.Limiter() != l {
		t.Fatal("limiter not used")
	}
	stored, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	occupy(t, l, 1)
	ctx := context.Background()
	calls := map[string]func() error{
		"Hash":             func() error { _, err := h.Hash(ctx, "pw"); return err },
		"Verify":           func() error { _, err := h.Verify(ctx, stored, "pw"); return err },
		"VerifyAndUpgrade": func() error { _, err := h.VerifyAndUpgrade(ctx, stored, "pw"); return err },
		"VerifyAndUpgrade malformed": func() error {
			_, err := h.VerifyAndUpgrade(ctx, "junk", "pw")
			return err
		},
		"DummyVerify": func() error { return h.DummyVerify(ctx, "pw") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrBusy) {
			t.Errorf("%s: err = %v, want ErrBusy", name, err)
		}
	}
}

func TestNewHasherInvalid(t *testing.T) {
	cases := map[string]Config{
		"memory over limit": {Params: Params{Memory: 128 * 1024}},
		"time over limit":   {Params: Params{Time: 11}},
		"threads over":      {Params: Params{Threads: 9, Memory: 1024}},
		"memory < 8p":       {Params: Params{Memory: 8, Threads: 2}},
		"short salt":        {Params: Params{SaltLength: 4}},
		"short key":         {Params: Params{KeyLength: 8}},
		"key over limit":    {Params: Params{KeyLength: 256}},
	}
	for name, cfg := range cases {
		if _, err := NewHasher(cfg); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: err = %v, want ErrInvalidParams", name, err)
		}
	}
	// Raising the limits makes the large memory setting acceptable.
	h, err := NewHasher(Config{Params: Params{Memory: 256, Time: 11}, Limits: Limits{MaxTime: 11}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Limits().MaxTime != 11 || h.Limits().MaxMemoryKiB != DefaultLimits().MaxMemoryKiB {
		t.Fatalf("limits = %+v", h.Limits())
	}
}
