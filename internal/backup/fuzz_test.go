package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzExtract feeds arbitrary bytes to the archive reader: it never panics, and whatever it accepts
// or half-reads, it writes only the manifest's allowed names inside its directory.
func FuzzExtract(f *testing.F) {
	dir := f.TempDir()
	db := filepath.Join(dir, dbName)
	os.WriteFile(db, []byte("SQLite format 3\x00 not really"), 0o600)
	ks := filepath.Join(dir, "keys.json")
	os.WriteFile(ks, []byte(`{"master_key":"m"}`), 0o600)
	m := &Manifest{Format: Format, FormatVersion: FormatVersion, CreatedAt: time.Unix(0, 0).UTC(), Database: "sqlite"}
	for _, p := range []string{db, ks} {
		b, _ := os.ReadFile(p)
		sum := sha256.Sum256(b)
		m.Files = append(m.Files, File{Name: filepath.Base(p), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	var buf bytes.Buffer
	if err := writeArchive(&buf, m, []string{db, ks}, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte("not an archive"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := t.TempDir()
		got, err := extract(bytes.NewReader(data), out)
		if err == nil && (got == nil || !got.Has(dbName)) {
			t.Fatal("accepted an archive without a database")
		}
		entries, _ := os.ReadDir(out)
		for _, e := range entries {
			if e.Name() != dbName && e.Name() != "keys.json" || e.IsDir() {
				t.Fatalf("wrote %q", e.Name())
			}
		}
		if parent, _ := os.ReadDir(filepath.Dir(out)); len(parent) != 1 {
			t.Fatalf("wrote beside its directory: %v", parent)
		}
	})
}
