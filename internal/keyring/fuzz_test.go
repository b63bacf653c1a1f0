package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

// FuzzParseKEK: any input either parses to a key or is refused with ErrKEKFormat; never a panic, and
// a key is only ever made of exactly 32 bytes.
func FuzzParseKEK(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	f.Add("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add("short")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKEK(s)
		if err != nil {
			if !errors.Is(err, ErrKEKFormat) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(k.ID()) != 12 {
			t.Fatalf("id %q", k.ID())
		}
	})
}

// FuzzOpen: whatever is stored as the sealed part, opening it fails with ErrTampered or yields exactly
// what was sealed; never a panic.
func FuzzOpen(f *testing.F) {
	k, err := ParseKEK(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		f.Fatal(err)
	}
	ad := additionalData(k.ID(), 2, []byte(`{"salt":"00","keys":[]}`))
	good := k.seal([]byte(`{"master:x":"secret"}`), ad)
	f.Add(good, []byte(ad))
	f.Add("", []byte{})
	f.Add("!!!", ad)
	f.Fuzz(func(t *testing.T, sealed string, data []byte) {
		pt, err := k.open(sealed, data)
		if err != nil {
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Only a genuine sealing of this plaintext under this key and additional data opens (the
		// fuzzing workers seal their own seed with another nonce: equally genuine).
		if !bytes.Equal(data, ad) || string(pt) != `{"master:x":"secret"}` {
			t.Fatalf("opened something that was not sealed: %q", pt)
		}
	})
}
