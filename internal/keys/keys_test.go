package keys

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := Generate()
		if len(k) != 32 || seen[k] {
			t.Fatalf("bad or repeated key %q", k)
		}
		for _, c := range k {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				t.Fatalf("key %q has %q", k, c)
			}
		}
		seen[k] = true
	}
}

func TestEnsureCreatesOnceWithMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	now := time.Now()
	s1, created, err := Ensure(dir, now)
	if err != nil || !created {
		t.Fatalf("first ensure: %v %v", created, err)
	}
	st, err := os.Stat(Path(dir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", dst.Mode())
	}
	s2, created, err := Ensure(dir, now)
	if err != nil || created || s2.MasterKey != s1.MasterKey {
		t.Fatalf("second ensure changed keys: %v %v", created, err)
	}
}

func TestEnsureRace(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	got := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, err := Ensure(dir, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			got <- s.MasterKey
		}()
	}
	wg.Wait()
	close(got)
	first := ""
	for k := range got {
		if first == "" {
			first = k
		}
		if k != first {
			t.Fatal("concurrent starts produced different keys")
		}
	}
}

func TestRotateKeepsPreviousAndPrunes(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, _, err := Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	old := s.MasterKey
	if err := s.Rotate(Master, now, 720*time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if s.MasterKey == old || len(s.Previous) != 1 || s.Previous[0].Key != old {
		t.Fatalf("rotate: %+v", s)
	}
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil || loaded.MasterKey != s.MasterKey || len(loaded.Previous) != 1 {
		t.Fatalf("reload: %+v %v", loaded, err)
	}
	if st, _ := os.Stat(Path(dir)); st.Mode().Perm() != 0o600 {
		t.Fatalf("saved mode %v", st.Mode())
	}
	// 31 days later the retired key's tokens have all expired: it is pruned on the next rotation.
	later := now.Add(31 * 24 * time.Hour)
	if err := s.Rotate(Master, later, 720*time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if len(s.Previous) != 1 || s.Previous[0].Key == old {
		t.Fatalf("prune: %+v", s.Previous)
	}
	if err := s.Rotate(Master, later, 720*time.Hour, true); err != nil || len(s.Previous) != 0 {
		t.Fatalf("revoke: %+v %v", s.Previous, err)
	}
	app := s.ApplicationKey
	if err := s.Rotate(Application, later, 720*time.Hour, false); err != nil || s.ApplicationKey == app {
		t.Fatal("application key not rotated")
	}
	if err := s.Rotate("bogus", later, time.Hour, false); err == nil {
		t.Fatal("bogus key accepted")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err != ErrNotFound {
		t.Fatalf("missing: %v", err)
	}
	os.WriteFile(Path(dir), []byte("{"), 0o600)
	if _, err := Load(dir); err == nil {
		t.Fatal("corrupt file accepted")
	}
	os.WriteFile(Path(dir), []byte(`{"master_key":"x"}`), 0o600)
	if _, err := Load(dir); err == nil {
		t.Fatal("incomplete file accepted")
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	r, err := Resolve(dir, Configured{MasterKey: "configured-master-key-000000"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r.MasterKey != "configured-master-key-000000" || !r.Generated || len(r.FromFile) != 2 {
		t.Fatalf("resolve: %+v", r)
	}
	all := Configured{MasterKey: "m-000000000000000000", ApplicationKey: "a-000000000000000000", SystemKey: "s-000000000000000000"}
	r, err = Resolve(t.TempDir(), all, now, time.Hour)
	if err != nil || r.Generated || len(r.FromFile) != 0 || r.ApplicationKey != all.ApplicationKey {
		t.Fatalf("all configured: %+v %v", r, err)
	}
}

// With keys from the configuration, the first start never writes or shows them: the file holds only
// the generated keys and lists the configured ones (issue 11: the banner printed the environment's
// keys and keys.json got different random ones).
func TestResolveNeverWritesConfiguredKeys(t *testing.T) {
	now := time.Now()
	const master, app = "env-master-key-0123456789abcdef", "env-application-key-0123456789"
	dir := t.TempDir()
	r, err := Resolve(dir, Configured{MasterKey: master, ApplicationKey: app}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r.MasterKey != master || r.ApplicationKey != app || r.SystemKey == "" {
		t.Fatalf("resolved %+v", r.Set)
	}
	if !r.Generated || r.Shown.MasterKey != "" || r.Shown.ApplicationKey != "" || r.Shown.SystemKey != r.SystemKey {
		t.Fatalf("shown: %+v", r.Shown)
	}
	banner := Banner(dir, &r.Shown)
	b, err := os.ReadFile(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{banner, string(b)} {
		if strings.Contains(out, master) || strings.Contains(out, app) {
			t.Fatalf("a configured key was written or shown:\n%s", out)
		}
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.MasterKey != "" || f.ApplicationKey != "" || !f.IsConfigured(Master) || !f.IsConfigured(Application) || f.IsConfigured(System) {
		t.Fatalf("file: %+v", f)
	}
	// The master key is no longer configured: one is generated into the file and shown once.
	r, err = Resolve(dir, Configured{ApplicationKey: app}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Generated || r.Shown.MasterKey == "" || r.Shown.MasterKey != r.MasterKey || r.Shown.ApplicationKey != "" {
		t.Fatalf("after unsetting the master key: %+v", r.Shown)
	}
	if f, _ := Load(dir); f.IsConfigured(Master) || f.MasterKey != r.MasterKey {
		t.Fatal("file not updated")
	}
	// All three configured and no file: none is created.
	empty := t.TempDir()
	if _, err := Resolve(empty, Configured{MasterKey: master, ApplicationKey: app, SystemKey: "env-system-key-0123456789abcdef"}, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Path(empty)); !os.IsNotExist(err) {
		t.Fatalf("keys.json created with every key configured: %v", err)
	}
}
