package keys

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/signing"
)

// TestSigningSchedule: the first signing key signs at once; a rotated one signs after the lead (it is
// published before); a rotation before the previous one signs is refused; a key replaced more than
// keep ago is dropped; the schedule survives a save and a load.
func TestSigningSchedule(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const lead, keep = 5 * time.Minute, time.Hour
	if err := EnsureSigning(dir, nil, signing.ES256, t0, lead, keep); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil || len(s.Signing) != 1 || !s.Signing[0].SignsFrom.Equal(t0) || s.SigningAlg() != signing.ES256 {
		t.Fatalf("first key: %+v %v", s, err)
	}
	if err := EnsureSigning(dir, nil, signing.ES256, t0, lead, keep); err != nil {
		t.Fatal(err)
	}
	if s, _ = Load(dir); len(s.Signing) != 1 {
		t.Fatal("EnsureSigning added a key of the algorithm already signing")
	}
	k, err := s.AddSigning(signing.EdDSA, t0.Add(time.Minute), lead, keep)
	if err != nil || !k.SignsFrom.Equal(t0.Add(time.Minute+lead)) {
		t.Fatalf("rotation: %+v %v", k, err)
	}
	if _, err := s.AddSigning(signing.EdDSA, t0.Add(2*time.Minute), lead, keep); err == nil || !strings.Contains(err.Error(), "rotate again after") {
		t.Fatalf("rotation while one is pending: %v", err)
	}
	set, err := signing.NewSet(s.SigningEntries(), signing.Options{Issuer: "https://x", Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	if st := set.States(t0.Add(2 * time.Minute)); !st[0].Signing || st[1].Signing || !st[1].Published {
		t.Fatalf("before the lead: %+v", st)
	}
	if st := set.States(t0.Add(time.Minute + lead)); st[0].Signing || !st[1].Signing || !st[0].Published {
		t.Fatalf("after the lead: %+v", st)
	}
	// Later than keep after the second key took over, a third rotation drops the first key.
	if _, err := s.AddSigning(signing.EdDSA, t0.Add(time.Minute+lead+keep+time.Second), lead, keep); err != nil {
		t.Fatal(err)
	}
	if len(s.Signing) != 2 || s.Signing[0].Key != k.Key {
		t.Fatalf("retired key kept past keep: %d keys", len(s.Signing))
	}
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	if l, err := Load(dir); err != nil || len(l.Signing) != 2 || !l.Signing[1].SignsFrom.Equal(s.Signing[1].SignsFrom) {
		t.Fatalf("reloaded: %v", err)
	}
}
