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
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/progress"
)

// Restored describes a finished restore.
type Restored struct {
	Manifest *Manifest
	// MovedAside is where the replaced data directory now is ("" when there was none).
	MovedAside string
}

// Restore unpacks the archive at in into dataDir. Every file is checked against the manifest's size and
// SHA-256 and the database against SQLite's integrity check and this binary's schema (a schema with a
// newer non-additive migration is refused) in a directory beside dataDir; only then is that directory
// renamed into place. A dataDir that exists and is not empty is refused unless force is set, and then
// moved aside (never deleted) to dataDir.before-restore-<time>. line (nil: none) shows the bytes read.
func Restore(ctx context.Context, in, dataDir string, force bool, now time.Time, line *progress.Line) (*Restored, error) {
	dataDir = filepath.Clean(dataDir)
	empty, exists, err := dirState(dataDir)
	if err != nil {
		return nil, err
	}
	if exists && !empty && !force {
		return nil, fmt.Errorf("restore: the data directory %s is not empty: pass --force to replace it (its contents are moved aside, not deleted); stop every server using it first", dataDir)
	}
	f, err := os.Open(in)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	parent := filepath.Dir(dataDir)
	tmp, err := os.MkdirTemp(parent, ".gatehouse-restore-")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if fi, err := f.Stat(); err == nil {
		line.SetTotal(fi.Size())
	}
	m, err := extract(line.Reader(f), tmp)
	if err != nil {
		return nil, err
	}
	st, err := checkDatabase(ctx, filepath.Join(tmp, dbName))
	if err != nil {
		return nil, fmt.Errorf("restore: the archived database does not verify: %w", err)
	}
	if err := st.Compatible(); err != nil {
		return nil, fmt.Errorf("restore: the archive comes from a newer Gatehouse: %w", err)
	}
	if m.Has(keys.FileName) {
		if _, err := keys.Load(tmp); err != nil {
			return nil, fmt.Errorf("restore: the archived keys do not load: %w", err)
		}
	}
	res := &Restored{Manifest: m}
	if exists {
		if empty {
			if err := os.Remove(dataDir); err != nil {
				return nil, fmt.Errorf("restore: %w", err)
			}
		} else {
			res.MovedAside = fmt.Sprintf("%s.before-restore-%s", dataDir, now.UTC().Format("20060102T150405Z"))
			if err := os.Rename(dataDir, res.MovedAside); err != nil {
				return nil, fmt.Errorf("restore: move the current data directory aside: %w", err)
			}
		}
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		if res.MovedAside != "" {
			os.Rename(res.MovedAside, dataDir) //nolint:errcheck // put the original back; the error below is what matters
		}
		return nil, fmt.Errorf("restore: %w", err)
	}
	done = true
	syncDir(parent)
	return res, nil
}

func dirState(dir string) (empty, exists bool, err error) {
	d, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("restore: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, true, fmt.Errorf("restore: %s: %w", dir, err)
	}
	return len(names) == 0, true, nil
}

// extract reads the archive into dir, checking it entry by entry against the manifest (which must
// come first): only the manifest's files, each once, regular, of its size and checksum.
func extract(r io.Reader, dir string) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("restore: not a Gatehouse backup archive: %w", err)
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != manifestName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxManifest {
		return nil, errors.New("restore: not a Gatehouse backup archive: it does not start with its manifest")
	}
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(tr, maxManifest))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("restore: the manifest is invalid: %w", err)
	}
	if m.Format != Format || m.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("restore: unsupported archive format %q version %d", m.Format, m.FormatVersion)
	}
	if m.Database != "sqlite" {
		return nil, fmt.Errorf("restore: the archive holds a %q database; only SQLite archives are restored by gatehouse restore", m.Database)
	}
	want := map[string]File{}
	for _, f := range m.Files {
		if f.Name != dbName && f.Name != keys.FileName {
			return nil, fmt.Errorf("restore: the manifest lists an unexpected file %q", f.Name)
		}
		if _, dup := want[f.Name]; dup {
			return nil, fmt.Errorf("restore: the manifest lists %q twice", f.Name)
		}
		want[f.Name] = f
	}
	if _, ok := want[dbName]; !ok {
		return nil, errors.New("restore: the archive has no database")
	}
	got := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("restore: the archive is damaged: %w", err)
		}
		f, ok := want[hdr.Name]
		if !ok || got[hdr.Name] || hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("restore: unexpected archive entry %q", hdr.Name)
		}
		if hdr.Size != f.Size {
			return nil, fmt.Errorf("restore: %s: size %d, the manifest says %d", hdr.Name, hdr.Size, f.Size)
		}
		out, err := os.OpenFile(filepath.Join(dir, f.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(tr, f.Size))
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("restore: %s: %w", f.Name, err)
		}
		if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
			return nil, fmt.Errorf("restore: %s does not match its checksum in the manifest: the archive is damaged or was altered", f.Name)
		}
		got[f.Name] = true
	}
	for name := range want {
		if !got[name] {
			return nil, fmt.Errorf("restore: the archive lacks %s, which its manifest lists", name)
		}
	}
	return &m, nil
}
