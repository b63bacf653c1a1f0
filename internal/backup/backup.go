// Package backup writes and restores Gatehouse backup archives for the embedded SQLite database: a
// gzipped tar holding manifest.json (format, schema version, SHA-256 of every file), the database
// copied online with VACUUM INTO (a consistent snapshot while servers keep writing), and the data
// directory's keys.json. Restore verifies every checksum and the database before it touches the data
// directory, then swaps the restored directory in with a rename. PostgreSQL databases are backed up
// with pg_dump (docs/operations.md).
package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/progress"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Format identifies the archive format in the manifest.
const (
	Format        = "gatehouse-backup"
	FormatVersion = 1
	manifestName  = "manifest.json"
	dbName        = "gatehouse.db"
)

// maxManifest bounds the manifest read from an archive.
const maxManifest = 1 << 20

// File is one archived file.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes an archive.
type Manifest struct {
	Format           string    `json:"format"`
	FormatVersion    int       `json:"formatVersion"`
	CreatedAt        time.Time `json:"createdAt"`
	GatehouseVersion string    `json:"gatehouseVersion"`
	Database         string    `json:"database"`
	SchemaVersion    int       `json:"schemaVersion"`
	Migrations       []int     `json:"migrations"`
	Files            []File    `json:"files"`
}

// Has reports whether the archive holds a file.
func (m *Manifest) Has(name string) bool {
	for _, f := range m.Files {
		if f.Name == name {
			return true
		}
	}
	return false
}

// Create writes an archive of db (SQLite) and dataDir's keys.json (when there is one) to out, mode
// 0600. out must not exist unless overwrite is set; it appears complete or not at all. line (nil: none)
// shows the bytes archived.
func Create(ctx context.Context, db *store.DB, dataDir, out, version string, overwrite bool, now time.Time, line *progress.Line) (*Manifest, error) {
	if db.Dialect != store.SQLite {
		return nil, errors.New("backup: the database is PostgreSQL: back it up with pg_dump (docs/operations.md, \"Backups and restore\")")
	}
	if _, err := os.Stat(out); err == nil && !overwrite {
		return nil, fmt.Errorf("backup: %s exists (pass --force to replace it)", out)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".gatehouse-backup-")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	snap := filepath.Join(tmp, dbName)
	line.SetNote("copying the database")
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, snap); err != nil {
		return nil, fmt.Errorf("backup: copy the database: %w", err)
	}
	if err := os.Chmod(snap, 0o600); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	st, err := checkDatabase(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("backup: the copy does not verify: %w", err)
	}
	m := &Manifest{Format: Format, FormatVersion: FormatVersion, CreatedAt: now.UTC(), GatehouseVersion: version, Database: "sqlite", SchemaVersion: st.Current}
	for _, a := range st.Applied {
		m.Migrations = append(m.Migrations, a.Version)
	}
	files := []string{snap}
	if _, err := os.Stat(keys.Path(dataDir)); err == nil {
		files = append(files, keys.Path(dataDir))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("backup: %w", err)
	}
	for _, p := range files {
		f, err := digest(p)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, f)
	}
	part, err := os.OpenFile(filepath.Join(tmp, "archive"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	line.SetTotal(total)
	line.SetNote("writing " + filepath.Base(out))
	if err := writeArchive(part, m, files, line); err != nil {
		part.Close()
		return nil, err
	}
	if err := part.Sync(); err != nil {
		part.Close()
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := part.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(part.Name(), out); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	syncDir(filepath.Dir(out))
	return m, nil
}

func writeArchive(w io.Writer, m *Manifest, files []string, line *progress.Line) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	hdr := &tar.Header{Name: manifestName, Mode: 0o600, Size: int64(len(mb)), ModTime: m.CreatedAt, Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := tw.Write(mb); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	for i, p := range files {
		if err := addFile(tw, p, m.Files[i], m.CreatedAt, line); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func addFile(tw *tar.Writer, path string, f File, at time.Time, line *progress.Line) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer in.Close()
	if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o600, Size: f.Size, ModTime: at, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The file was digested just before; a file that changed since (keys rotated meanwhile) fails here
	// rather than producing an archive whose checksum is wrong.
	h := sha256.New()
	if n, err := io.Copy(io.MultiWriter(tw, h, line.Writer(io.Discard)), io.LimitReader(in, f.Size)); err != nil || n != f.Size {
		return fmt.Errorf("backup: %s changed while it was archived; try again", f.Name)
	}
	if hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("backup: %s changed while it was archived; try again", f.Name)
	}
	return nil
}

func digest(path string) (File, error) {
	in, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("backup: %w", err)
	}
	defer in.Close()
	h := sha256.New()
	n, err := io.Copy(h, in)
	if err != nil {
		return File{}, fmt.Errorf("backup: %w", err)
	}
	return File{Name: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// checkDatabase opens a SQLite file without migrating it, runs SQLite's integrity check and reads its
// schema status.
func checkDatabase(ctx context.Context, path string) (store.Status, error) {
	db, err := store.OpenWith(ctx, (&url.URL{Scheme: "sqlite", Path: path}).String(), "", store.Options{Schema: store.AnySchema})
	if err != nil {
		return store.Status{}, err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return store.Status{}, err
	}
	if res != "ok" {
		return store.Status{}, fmt.Errorf("integrity check: %s", res)
	}
	return db.Status(ctx)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() //nolint:errcheck // best effort: the rename is done; this makes it durable sooner
		d.Close()
	}
}
