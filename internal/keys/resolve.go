package keys

import (
	"fmt"
	"os"
	"time"
)

// Configured are secrets given by configuration (empty = take from the data directory's file).
type Configured struct {
	MasterKey, ApplicationKey, SystemKey string
}

// Resolved are the secrets in force and where they came from.
type Resolved struct {
	Set
	// Generated is true when the file was created now: the caller prints the keys once.
	Generated bool
	// FromFile lists which keys came from the file (for messages and for reloads).
	FromFile []Which
}

// Resolve merges configured secrets over the data directory's file, creating the file when some key
// is not configured. Retired master keys older than keep are dropped from the result.
func Resolve(dataDir string, c Configured, now time.Time, keep time.Duration) (*Resolved, error) {
	r := &Resolved{}
	if c.MasterKey != "" && c.ApplicationKey != "" && c.SystemKey != "" {
		r.Set = Set{MasterKey: c.MasterKey, ApplicationKey: c.ApplicationKey, SystemKey: c.SystemKey}
		// A file may still list master keys retired by an earlier rotation.
		if f, err := Load(dataDir); err == nil {
			r.Previous = f.Previous
		}
		r.Prune(now, keep)
		return r, nil
	}
	f, created, err := Ensure(dataDir, now)
	if err != nil {
		return nil, err
	}
	r.Set, r.Generated = *f, created
	if c.MasterKey != "" {
		if c.MasterKey != f.MasterKey {
			r.MasterKey = c.MasterKey
		}
	} else {
		r.FromFile = append(r.FromFile, Master)
	}
	if c.ApplicationKey != "" {
		r.ApplicationKey = c.ApplicationKey
	} else {
		r.FromFile = append(r.FromFile, Application)
	}
	if c.SystemKey != "" {
		r.SystemKey = c.SystemKey
	} else {
		r.FromFile = append(r.FromFile, System)
	}
	r.Prune(now, keep)
	return r, nil
}

// ModTime is the secrets file's modification time (zero if absent), for reload polling.
func ModTime(dataDir string) time.Time {
	st, err := os.Stat(Path(dataDir))
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// Banner is the one-time message showing generated keys.
func Banner(dataDir string, s *Set) string {
	return fmt.Sprintf(`
================================================================================
 Gatehouse generated new keys (stored with mode 0600 in %s).
 They are shown this once. Keep the master key secret: it is full admin access.

   master key (X-ZUMO-MASTER):           %s
   application key (X-ZUMO-APPLICATION): %s

 Rotate with: gatehouse keys rotate --which master
================================================================================
`, Path(dataDir), s.MasterKey, s.ApplicationKey)
}
