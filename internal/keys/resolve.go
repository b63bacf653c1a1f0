package keys

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Configured are secrets given by configuration (empty = take from the data directory's file).
type Configured struct {
	MasterKey, ApplicationKey, SystemKey string
}

// Resolved are the secrets in force and where they came from.
type Resolved struct {
	Set
	// Generated is true when keys were generated into the file now; Shown holds only those keys (never
	// a configured one), for the one-time banner.
	Generated bool
	Shown     Set
	// FromFile lists which keys came from the file (for messages and for reloads).
	FromFile []Which
}

func (c Configured) which() []Which {
	var out []Which
	for _, w := range []Which{Master, Application, System} {
		if *c.get(w) != "" {
			out = append(out, w)
		}
	}
	return out
}

func (c *Configured) get(w Which) *string {
	switch w {
	case Master:
		return &c.MasterKey
	case Application:
		return &c.ApplicationKey
	default:
		return &c.SystemKey
	}
}

func sameWhich(a, b []Which) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Resolve merges configured secrets over the data directory's file. The file holds only the keys
// that are not configured: a configured key is never written to it (nor shown), and the file lists
// which keys the configuration sets, so that `keys rotate` can refuse to rotate them there. The file
// is created when some key is not configured. Retired master keys older than keep are dropped from
// the result.
func Resolve(dataDir string, c Configured, now time.Time, keep time.Duration) (*Resolved, error) {
	conf := c.which()
	r := &Resolved{}
	var f *Set
	if len(conf) == 3 {
		loaded, err := Load(dataDir)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		f = loaded // nil: no file, and none is needed
	} else {
		var err error
		f, r.Generated, err = ensure(dataDir, now, conf)
		if err != nil {
			return nil, err
		}
		if r.Generated {
			for _, w := range []Which{Master, Application, System} {
				if !f.IsConfigured(w) {
					*r.Shown.get(w) = *f.get(w)
				}
			}
		}
	}
	if f != nil {
		// Bring the file in line with the configuration: the list of configured keys, and a generated
		// key for one no longer configured. (A value an older version wrote for a configured key is
		// left alone: it may be what someone falls back to.)
		dirty := !sameWhich(f.Configured, conf)
		f.Configured = conf
		for _, w := range []Which{Master, Application, System} {
			if v := f.get(w); *c.get(w) == "" && *v == "" {
				*v, dirty = Generate(), true
				*r.Shown.get(w), r.Generated = *v, true
			}
		}
		if dirty {
			if err := f.Save(dataDir); err != nil {
				return nil, err
			}
		}
		r.Set = *f
		r.Configured = nil
	}
	for _, w := range []Which{Master, Application, System} {
		if v := *c.get(w); v != "" {
			*r.get(w) = v
		} else {
			r.FromFile = append(r.FromFile, w)
		}
	}
	r.CreatedAt = time.Time{}
	if f != nil {
		r.CreatedAt = f.CreatedAt
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

// Banner is the one-time message showing generated keys. Only keys present in s are shown: callers
// pass the keys they generated, never keys that came from the configuration.
func Banner(dataDir string, s *Set) string {
	var lines strings.Builder
	if s.MasterKey != "" {
		fmt.Fprintf(&lines, "   master key (X-ZUMO-MASTER):           %s\n", s.MasterKey)
	}
	if s.ApplicationKey != "" {
		fmt.Fprintf(&lines, "   application key (X-ZUMO-APPLICATION): %s\n", s.ApplicationKey)
	}
	if s.SystemKey != "" && lines.Len() == 0 {
		lines.WriteString("   (a system key, for scheduler tokens)\n")
	}
	return fmt.Sprintf(`
================================================================================
 Gatehouse generated new keys (stored with mode 0600 in %s).
 They are shown this once. Keep the master key secret: it is full admin access.

%s
 Rotate with: gatehouse keys rotate --which master
================================================================================
`, Path(dataDir), lines.String())
}
