// Package keys keeps Gatehouse's own secrets — master key, application key, system key, and the
// master keys retired by rotation — in a file in the data directory (mode 0600, written atomically).
//
// Secrets given in the configuration (MS_MasterKey and friends) take precedence over the file; the file
// is what makes `go run ./cmd/gatehouse` work with zero set-up and what `gatehouse keys rotate` edits.
package keys

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// FileName is the secrets file inside the data directory.
const FileName = "keys.json"

// Retired is a master key that no longer signs but still verifies the tokens it signed.
type Retired struct {
	Key       string    `json:"key"`
	RetiredAt time.Time `json:"retired_at"`
}

// Set is the content of the secrets file.
type Set struct {
	MasterKey      string    `json:"master_key"`
	ApplicationKey string    `json:"application_key"`
	SystemKey      string    `json:"system_key"`
	Previous       []Retired `json:"previous_master_keys,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	RotatedAt      time.Time `json:"rotated_at,omitzero"`
	// Configured lists the keys the servers using this directory take from their configuration
	// (MS_MasterKey and friends): the file holds no value for them, and `keys rotate` refuses to
	// rotate them here, where a new value would change nothing.
	Configured []Which `json:"set_by_configuration,omitempty"`
}

// IsConfigured reports whether a key is listed in Configured.
func (s *Set) IsConfigured(w Which) bool {
	for _, c := range s.Configured {
		if c == w {
			return true
		}
	}
	return false
}

func (s *Set) get(w Which) *string {
	switch w {
	case Master:
		return &s.MasterKey
	case Application:
		return &s.ApplicationKey
	default:
		return &s.SystemKey
	}
}

// ErrNotFound is returned by Load when the data directory has no secrets file.
var ErrNotFound = errors.New("keys: no secrets file")

// Generate returns a new random key: 32 characters of [A-Za-z0-9] (about 190 bits), the shape of the
// original's keys so that they paste into the same places.
func Generate() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 32)
	buf := make([]byte, 64)
	for i := 0; i < len(out); {
		if _, err := rand.Read(buf); err != nil {
			panic(fmt.Sprintf("keys: crypto/rand failed: %v", err)) // never happens on supported platforms
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: reject to keep the choice uniform
				continue
			}
			out[i] = alphabet[int(b)%len(alphabet)]
			i++
			if i == len(out) {
				break
			}
		}
	}
	return string(out)
}

// New returns a freshly generated set.
func New(now time.Time) *Set {
	return &Set{MasterKey: Generate(), ApplicationKey: Generate(), SystemKey: Generate(), CreatedAt: now.UTC()}
}

// Path is the secrets file of a data directory.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

// Load reads the secrets file.
func Load(dataDir string) (*Set, error) {
	b, err := os.ReadFile(Path(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	var s Set
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("keys: %s is not valid: %w", Path(dataDir), err)
	}
	for _, w := range []Which{Master, Application, System} {
		if *s.get(w) == "" && !s.IsConfigured(w) {
			return nil, fmt.Errorf("keys: %s is missing the %s key", Path(dataDir), w)
		}
	}
	return &s, nil
}

// Ensure loads the secrets file, creating the data directory and a new file if there is none.
// created reports whether the keys were just generated (the caller prints them once).
func Ensure(dataDir string, now time.Time) (s *Set, created bool, err error) {
	return ensure(dataDir, now, nil)
}

// ensure is Ensure for a file whose configured keys are not generated (left empty, listed).
func ensure(dataDir string, now time.Time, configured []Which) (s *Set, created bool, err error) {
	s, err = Load(dataDir)
	if err == nil {
		return s, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("keys: create data directory: %w", err)
	}
	s = New(now)
	for _, w := range configured {
		*s.get(w) = ""
	}
	s.Configured = configured
	if err := s.create(dataDir); err != nil {
		// Another process may have won the race to create it: use theirs.
		if errors.Is(err, os.ErrExist) {
			s, err = Load(dataDir)
			return s, false, err
		}
		return nil, false, err
	}
	return s, true, nil
}

// create writes the secrets file only if none exists, and never lets a reader see it half-written:
// the keys go to a fsynced temporary file which is then hard-linked to the final name. link(2) fails
// with EEXIST when another process got there first, and a concurrent Load sees either no file or the
// whole one (an O_EXCL create followed by a write once let a racing start read an empty file).
func (s *Set) create(dataDir string) error { return s.write(dataDir, os.Link) }

// Save replaces the secrets file atomically (temporary file, fsync, rename).
func (s *Set) Save(dataDir string) error { return s.write(dataDir, os.Rename) }

// write puts the keys in a fsynced 0600 temporary file in dataDir and publishes it under the final
// name with publish (os.Rename to replace, os.Link to create only).
func (s *Set) write(dataDir string, publish func(oldpath, newpath string) error) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, ".keys-*.json")
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if err := publish(tmp.Name(), Path(dataDir)); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

// Which names a key to rotate.
type Which string

// Keys that can be rotated.
const (
	Master      Which = "master"
	Application Which = "application"
	System      Which = "system"
)

// Rotate replaces one key with a new random one. A rotated master key joins Previous so that tokens it
// signed keep verifying until they expire; revokePrevious drops every retired master key instead
// (for a leaked key: everyone signed in with it is logged out). Retired keys older than keep are pruned.
func (s *Set) Rotate(which Which, now time.Time, keep time.Duration, revokePrevious bool) error {
	now = now.UTC()
	switch which {
	case Master:
		if revokePrevious {
			s.Previous = nil
		} else {
			s.Previous = append([]Retired{{Key: s.MasterKey, RetiredAt: now}}, s.Previous...)
		}
		s.MasterKey = Generate()
	case Application:
		s.ApplicationKey = Generate()
	case System:
		s.SystemKey = Generate()
	default:
		return fmt.Errorf("keys: unknown key %q (master, application or system)", which)
	}
	s.RotatedAt = now
	s.Prune(now, keep)
	return nil
}

// Prune drops retired master keys whose tokens have all expired (retired more than keep ago).
func (s *Set) Prune(now time.Time, keep time.Duration) {
	kept := s.Previous[:0]
	for _, r := range s.Previous {
		if now.Sub(r.RetiredAt) <= keep {
			kept = append(kept, r)
		}
	}
	s.Previous = kept
}
