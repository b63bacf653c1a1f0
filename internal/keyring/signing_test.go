package keyring_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/signing"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestSigningKeys: the first signing key signs at once; a rotated one is published (accepted) and
// promoted only once every live instance has it AND it has been published for the lead; the one it
// replaces stays (retired) until keep has passed; the private keys are sealed like the others.
func TestSigningKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := keyring.NewStore(db, newKEK(t))
		if _, _, err := st.Init(ctx, initial(), t0); err != nil {
			t.Fatal(err)
		}
		const lead, keep = 5 * time.Minute, time.Hour
		r, err := st.EnsureSigning(ctx, signing.ES256, lead, t0, keep)
		if err != nil {
			t.Fatal(err)
		}
		first, ok := r.Current(keys.Signing)
		if !ok || first.Alg != signing.ES256 || first.KID == "" {
			t.Fatalf("first signing key: %+v", r.Keys)
		}
		// Idempotent, and the private key is not in the clear document.
		if r2, err := st.EnsureSigning(ctx, signing.ES256, lead, t0, keep); err != nil || r2.Version != r.Version {
			t.Fatalf("EnsureSigning again wrote version %d (was %d): %v", r2.Version, r.Version, err)
		}
		var doc string
		if err := db.QueryRowContext(ctx, `SELECT doc FROM gatehouse_key_ring`).Scan(&doc); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(doc, `"d"`) || strings.Contains(doc, "\"d\\\"") {
			t.Fatal("a private key is in the clear document")
		}
		// An instance that has loaded version v acknowledges it.
		in := keyring.Instance{ID: "a", Host: "h", StartedAt: t0, RingVersion: r.Version}
		if err := st.Heartbeat(ctx, in, t0); err != nil {
			t.Fatal(err)
		}
		r, added, err := st.RotateSigning(ctx, signing.EdDSA, lead, t0, keep)
		if err != nil || added.State != keyring.Accepted || !added.NotBefore.Equal(t0.Add(lead)) {
			t.Fatalf("rotate: %+v %v", added, err)
		}
		if _, _, err := st.RotateSigning(ctx, signing.EdDSA, lead, t0, keep); !errors.Is(err, keyring.ErrRotationPending) {
			t.Fatalf("second rotation while one is pending: %v", err)
		}
		sec, err := r.Secrets(nil)
		if err != nil || len(sec.Signing) != 2 {
			t.Fatalf("secrets: %d signing entries, %v", len(sec.Signing), err)
		}
		// Everyone has acknowledged, but the lead has not passed: not promoted.
		in.RingVersion = r.Version
		st.Heartbeat(ctx, in, t0.Add(time.Second)) //nolint:errcheck
		if _, done, err := st.Promote(ctx, t0.Add(time.Minute), 10*time.Second, time.Hour, keep); err != nil || len(done) != 0 {
			t.Fatalf("promoted before the lead: %v %v", done, err)
		}
		r, done, err := st.Promote(ctx, t0.Add(lead), 10*time.Second, time.Hour, keep)
		if err != nil || len(done) != 1 || done[0].KID != added.KID {
			t.Fatalf("promotion after the lead: %v %v", done, err)
		}
		set, err := signing.NewSet(mustSecrets(t, r).Signing, signing.Options{Issuer: "https://x", Keep: keep})
		if err != nil {
			t.Fatal(err)
		}
		states := set.States(t0.Add(lead + time.Second))
		if len(states) != 2 {
			t.Fatalf("states %+v", states)
		}
		for _, s := range states {
			if s.Signing != (s.KID == added.KID) || !s.Published {
				t.Fatalf("after promotion: %+v", states)
			}
		}
		// After keep, a later rotation prunes the retired key from the ring.
		r, _, err = st.RotateSigning(ctx, signing.EdDSA, lead, t0.Add(lead+keep+time.Minute), keep)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range r.Keys {
			if x.KID == first.KID {
				t.Fatal("the retired signing key outlived keep")
			}
		}
	})
}

func mustSecrets(t *testing.T, r *keyring.Ring) struct{ Signing []signing.Entry } {
	t.Helper()
	s, err := r.Secrets(nil)
	if err != nil {
		t.Fatal(err)
	}
	return struct{ Signing []signing.Entry }{s.Signing}
}
