package password

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFromImportCanonical(t *testing.T) {
	key32 := strings.Repeat("A", 43) + "=" // 32 zero bytes, padded std base64
	cases := []struct {
		name string
		rec  ImportRecord
		want string
	}{
		{"phc argon2id padded", ImportRecord{Hash: "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4="},
			argon2Reference[2].stored},
		{"phc with format", ImportRecord{HashFormat: "ARGON2I", Hash: "  " + argon2Reference[0].stored + "\n"},
			argon2Reference[0].stored},
		{"bcrypt", ImportRecord{HashFormat: "bcrypt", Hash: bcryptReference[0].stored}, bcryptReference[0].stored},
		{"zumo", ImportRecord{HashFormat: "zumo", Salt: "c2FsdA==", Hash: key32},
			"$pbkdf2-sha1$i=1000$YzJGc2RBPT0$" + strings.Repeat("A", 43)},
		{"zumo variant", ImportRecord{HashFormat: "zumo", Salt: "c2FsdA==", SaltEncoding: "base64", Digest: "SHA-256", Iterations: 5000, Hash: key32},
			"$pbkdf2-sha256$i=5000$c2FsdA$" + strings.Repeat("A", 43)},
		{"pbkdf2 hex", ImportRecord{HashFormat: "pbkdf2", Digest: "sha512", Iterations: 7, Salt: "00ff", SaltEncoding: "hex",
			Hash: strings.Repeat("00", 16), HashEncoding: "hex", KeyLength: 16},
			"$pbkdf2-sha512$i=7$AP8$AAAAAAAAAAAAAAAAAAAAAA"},
		{"pbkdf2 url b64", ImportRecord{HashFormat: "pbkdf2-sha256", Iterations: 1, Salt: "-_8", SaltEncoding: "base64url", Hash: key32},
			"$pbkdf2-sha256$i=1$+/8$" + strings.Repeat("A", 43)},
		{"scrypt fields", ImportRecord{HashFormat: "scrypt", ScryptN: 16384, ScryptR: 8, ScryptP: 1, Salt: "c2FsdA", Hash: key32},
			"$scrypt$ln=14,r=8,p=1$c2FsdA$" + strings.Repeat("A", 43)},
		{"scrypt phc", ImportRecord{HashFormat: "scrypt", Hash: "$scrypt$ln=14,r=8,p=1$c2FsdA==$" + key32},
			"$scrypt$ln=14,r=8,p=1$c2FsdA$" + strings.Repeat("A", 43)},
		{"firebase", firebaseRecord(),
			"$firebase-scrypt$ln=14,r=8,ss=Bw,sk=" + strings.TrimRight(fbSignerKey, "=") + "$" + strings.TrimRight(fbSalt, "=") + "$" + strings.TrimRight(fbHash, "=")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromImport(c.rec)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestFromImportErrors(t *testing.T) {
	key32 := strings.Repeat("A", 43)
	cases := []struct {
		name   string
		rec    ImportRecord
		fields []string // every field that must be reported
	}{
		{"unknown format", ImportRecord{HashFormat: "md5", Hash: "x"}, []string{"hash_format"}},
		{"phc empty", ImportRecord{}, []string{"hash"}},
		{"phc garbage", ImportRecord{Hash: "garbage"}, []string{"hash"}},
		{"phc extra column", ImportRecord{Hash: bcryptReference[0].stored, Salt: "x"}, []string{"salt"}},
		{"scheme mismatch", ImportRecord{HashFormat: "argon2id", Hash: bcryptReference[0].stored}, []string{"hash"}},
		{"pbkdf2 missing all", ImportRecord{HashFormat: "pbkdf2"}, []string{"digest", "iterations", "salt_encoding", "salt", "hash"}},
		{"pbkdf2 bad digest", ImportRecord{HashFormat: "pbkdf2", Digest: "md5", Iterations: 1, Salt: "a", SaltEncoding: "utf8", Hash: key32}, []string{"digest"}},
		{"pbkdf2 digest conflict", ImportRecord{HashFormat: "pbkdf2-sha256", Digest: "sha1", Iterations: 1, Salt: "a", SaltEncoding: "utf8", Hash: key32}, []string{"digest"}},
		{"pbkdf2 bad encodings", ImportRecord{HashFormat: "pbkdf2-sha1", Iterations: 1, Salt: "zz", SaltEncoding: "hex", Hash: "!!", HashEncoding: "base64"}, []string{"salt", "hash"}},
		{"pbkdf2 unknown encodings", ImportRecord{HashFormat: "pbkdf2-sha1", Iterations: 1, Salt: "a", SaltEncoding: "rot13", Hash: key32, HashEncoding: "utf8"}, []string{"salt_encoding", "hash_encoding"}},
		{"pbkdf2 key length", ImportRecord{HashFormat: "pbkdf2-sha1", Iterations: 1, Salt: "a", SaltEncoding: "utf8", Hash: key32, KeyLength: 20}, []string{"key_length"}},
		{"pbkdf2 short key", ImportRecord{HashFormat: "pbkdf2-sha1", Iterations: 1, Salt: "a", SaltEncoding: "utf8", Hash: "AAAA"}, []string{"hash"}},
		{"pbkdf2 scrypt column", ImportRecord{HashFormat: "zumo", Salt: "a", Hash: key32, ScryptN: 2}, []string{"scrypt_n"}},
		{"scrypt missing", ImportRecord{HashFormat: "scrypt", Hash: key32}, []string{"scrypt_n", "scrypt_r", "scrypt_p", "salt"}},
		{"scrypt N not pow2", ImportRecord{HashFormat: "scrypt", ScryptN: 1000, ScryptR: 8, ScryptP: 1, Salt: "c2FsdA", Hash: key32}, []string{"scrypt_n"}},
		{"firebase missing", ImportRecord{HashFormat: "firebase-scrypt", Hash: fbHash}, []string{"rounds", "mem_cost", "signer_key", "salt_separator", "salt"}},
		{"firebase length", func() ImportRecord { r := firebaseRecord(); r.Hash = key32; return r }(), []string{"hash"}},
		{"firebase digest column", func() ImportRecord { r := firebaseRecord(); r.Digest = "sha1"; return r }(), []string{"digest"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := FromImport(c.rec)
			var ie *ImportError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidImport) || s != "" {
				t.Fatalf("FromImport = %q, %v; want *ImportError", s, err)
			}
			var got []string
			for _, f := range ie.Fields {
				got = append(got, f.Field)
				if f.Msg == "" {
					t.Errorf("empty message for %s", f.Field)
				}
			}
			for _, want := range c.fields {
				if !slices.Contains(got, want) {
					t.Errorf("fields %v lack %q (err: %v)", got, want, err)
				}
			}
		})
	}
}

// TestImportNeverEchoesSecrets: error messages name fields, never values.
func TestImportNeverEchoesSecrets(t *testing.T) {
	const secret = "SECRETSALTVALUE"
	_, err := FromImport(ImportRecord{HashFormat: "pbkdf2-sha1", Iterations: 1, Salt: secret, SaltEncoding: "hex", Hash: secret + "$"})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v", err)
	}
}

func TestHasherImportAppliesLimits(t *testing.T) {
	h := newTestHasher(t, Config{})
	rec := ImportRecord{HashFormat: "pbkdf2-sha256", Iterations: 3_000_000, Salt: "a", SaltEncoding: "utf8", Hash: strings.Repeat("A", 43)}
	if _, err := FromImport(rec); err != nil {
		t.Fatalf("FromImport (structure only): %v", err)
	}
	_, err := h.Import(rec)
	var ie *ImportError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("Import = %v, want limit error", err)
	}
	rec.Iterations = 1000
	if _, err := h.Import(rec); err != nil {
		t.Fatal(err)
	}
}

func TestParseImportRecord(t *testing.T) {
	cols := map[string]string{
		"email": "a@example.com", "user_id": "42", // not ours: ignored
		"hash_format": "zumo", "hash": "h", "salt": "s", "iterations": " 1000 ", "key_length": "32",
	}
	rec, err := ParseImportRecord(cols)
	if err != nil {
		t.Fatal(err)
	}
	if rec.HashFormat != "zumo" || rec.Iterations != 1000 || rec.KeyLength != 32 || rec.Salt != "s" {
		t.Fatalf("rec = %+v", rec)
	}
	_, err = ParseImportRecord(map[string]string{"iterations": "ten", "scrypt_n": "-1"})
	var ie *ImportError
	if !errors.As(err, &ie) || len(ie.Fields) != 2 {
		t.Fatalf("err = %v", err)
	}
	if got := ImportFields(); len(got) != 15 || got[0] != "hash_format" {
		t.Fatalf("ImportFields = %v", got)
	}
}

// TestImportRecordJSON: the documented JSON field names decode into the
// record and the classic vector then verifies end to end.
func TestImportRecordJSON(t *testing.T) {
	c := loadVectors(t).ZumoClassic[2]
	doc := `{"email":"x@example.com","hash_format":"zumo","salt":"` + c.Salt + `","hash":"` + c.Hash + `"}`
	var rec ImportRecord
	if err := json.Unmarshal([]byte(doc), &rec); err != nil {
		t.Fatal(err)
	}
	h := newTestHasher(t, Config{})
	s, err := h.Import(rec)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Verify(context.Background(), s, c.Password)
	if err != nil || !res.Match {
		t.Fatalf("%+v %v", res, err)
	}
}
