package keyring_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func newKEK(t *testing.T) *keyring.KEK {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck
	k, err := keyring.ParseKEK(base64.StdEncoding.EncodeToString(b) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func initial() map[keyring.Kind]string {
	return map[keyring.Kind]string{keys.Master: keys.Generate(), keys.Application: keys.Generate(), keys.System: keys.Generate()}
}

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func TestParseKEK(t *testing.T) {
	for _, bad := range []string{"", "short", strings.Repeat("a", 44), base64.StdEncoding.EncodeToString(make([]byte, 31)), base64.StdEncoding.EncodeToString(make([]byte, 33))} {
		if _, err := keyring.ParseKEK(bad); !errors.Is(err, keyring.ErrKEKFormat) {
			t.Errorf("ParseKEK(%q) = %v, want ErrKEKFormat", bad, err)
		}
	}
	raw := make([]byte, 32)
	rand.Read(raw) //nolint:errcheck
	a, err := keyring.ParseKEK(base64.RawURLEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, err := keyring.ParseKEK(" " + strings.ToUpper(hexOf(raw)) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() || len(a.ID()) != 12 {
		t.Fatalf("ids %q %q: the same key in two encodings must have one id", a.ID(), b.ID())
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestSealing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		kek := newKEK(t)
		st := keyring.NewStore(db, kek)
		sec := initial()
		r, created, err := st.Init(ctx, sec, t0)
		if err != nil || !created {
			t.Fatalf("Init: %v created=%v", err, created)
		}
		// No secret is stored in clear.
		var row string
		if err := db.QueryRowContext(ctx, `SELECT doc || kek_id || sealed FROM gatehouse_key_ring`).Scan(&row); err != nil {
			t.Fatal(err)
		}
		for k, v := range sec {
			if strings.Contains(row, v) {
				t.Fatalf("the %s key is stored in clear", k)
			}
		}
		got, err := st.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, err := got.Secrets(nil)
		if err != nil || s.MasterKey != sec[keys.Master] || s.ApplicationKey != sec[keys.Application] || s.SystemKey != sec[keys.System] {
			t.Fatalf("Secrets() = %v, %v", s.MasterKey == sec[keys.Master], err)
		}
		// A second Init returns the existing ring.
		if r2, created, err := st.Init(ctx, initial(), t0); err != nil || created || r2.Version != r.Version {
			t.Fatalf("second Init: %v %v", err, created)
		}

		// The wrong KEK is refused by id; no KEK at all is refused too.
		other := newKEK(t)
		_, err = keyring.NewStore(db, other).Load(ctx)
		var wrong *keyring.WrongKEKError
		if !errors.As(err, &wrong) || wrong.Ring != kek.ID() || wrong.Configured != other.ID() {
			t.Fatalf("wrong KEK: %v", err)
		}
		if _, err := keyring.NewStore(db, nil).Load(ctx); !errors.Is(err, keyring.ErrNeedKEK) {
			t.Fatalf("no KEK: %v", err)
		}

		// Tampering: the public part, the sealed part, the version (rollback) and the KEK id.
		tamper := func(name, stmt string, args ...any) {
			t.Helper()
			var v int64
			var d, k, s string
			if err := db.QueryRowContext(ctx, `SELECT version, doc, kek_id, sealed FROM gatehouse_key_ring`).Scan(&v, &d, &k, &s); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, db.Rebind(stmt), args...); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Load(ctx); err == nil {
				t.Errorf("%s: Load accepted a tampered ring", name)
			} else if !errors.Is(err, keyring.ErrTampered) && !errors.As(err, &wrong) {
				t.Errorf("%s: %v, want ErrTampered", name, err)
			}
			if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE gatehouse_key_ring SET version = ?, doc = ?, kek_id = ?, sealed = ?`), v, d, k, s); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Load(ctx); err != nil {
				t.Fatalf("%s: restored ring: %v", name, err)
			}
		}
		tamper("doc", `UPDATE gatehouse_key_ring SET doc = REPLACE(doc, '"current"', '"retired"')`)
		tamper("sealed", `UPDATE gatehouse_key_ring SET sealed = 'A' || SUBSTR(sealed, 2)`)
		tamper("version", `UPDATE gatehouse_key_ring SET version = version + 1`)
		tamper("kek id", `UPDATE gatehouse_key_ring SET kek_id = ?`, other.ID())
		tamper("declared", `UPDATE gatehouse_key_ring SET kek_id = ''`)

		// Rollback to an older, validly sealed version is refused too.
		var oldV int64
		var oldDoc, oldSealed string
		db.QueryRowContext(ctx, `SELECT version, doc, sealed FROM gatehouse_key_ring`).Scan(&oldV, &oldDoc, &oldSealed) //nolint:errcheck
		if _, _, err := st.Rotate(ctx, keys.Master, false, t0, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE gatehouse_key_ring SET doc = ?, sealed = ?`), oldDoc, oldSealed); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Load(ctx); !errors.Is(err, keyring.ErrTampered) {
			t.Fatalf("old content at a new version: %v", err)
		}
	})
}

func TestTwoPhaseRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := keyring.NewStore(db, newKEK(t))
		sec := initial()
		r, _, err := st.Init(ctx, sec, t0)
		if err != nil {
			t.Fatal(err)
		}
		const grace, live, keep = 10 * time.Second, 5 * time.Second, time.Hour
		// Two live instances, both on the current version.
		for _, id := range []string{"a", "b"} {
			if err := st.Heartbeat(ctx, keyring.Instance{ID: id, Host: "h", StartedAt: t0, RingVersion: r.Version}, t0); err != nil {
				t.Fatal(err)
			}
		}
		r, added, err := st.Rotate(ctx, keys.Master, false, t0, keep)
		if err != nil {
			t.Fatal(err)
		}
		if added.State != keyring.Accepted || added.AcceptedIn != r.Version {
			t.Fatalf("added %+v at version %d", added, r.Version)
		}
		s, _ := r.Secrets(nil)
		if s.MasterKey != sec[keys.Master] {
			t.Fatal("an accepted key must not sign yet")
		}
		if len(s.Previous) != 1 || !s.Previous[0].RetiredAt.IsZero() {
			t.Fatalf("the accepted key must verify: %+v", s.Previous)
		}
		if _, _, err := st.Rotate(ctx, keys.Master, false, t0, keep); !errors.Is(err, keyring.ErrRotationPending) {
			t.Fatalf("second rotation while pending: %v", err)
		}
		// Only a acknowledged: no promotion.
		st.Heartbeat(ctx, keyring.Instance{ID: "a", RingVersion: r.Version}, t0.Add(time.Second)) //nolint:errcheck
		if _, p, err := st.Promote(ctx, t0.Add(time.Second), grace, live, keep); err != nil || len(p) != 0 {
			t.Fatalf("promoted before every live instance acknowledged: %v %v", p, err)
		}
		// b acknowledges: promoted.
		st.Heartbeat(ctx, keyring.Instance{ID: "b", RingVersion: r.Version}, t0.Add(time.Second)) //nolint:errcheck
		r2, p, err := st.Promote(ctx, t0.Add(2*time.Second), grace, live, keep)
		if err != nil || len(p) != 1 || p[0].Fingerprint != added.Fingerprint {
			t.Fatalf("promote: %v %v", p, err)
		}
		s2, _ := r2.Secrets(nil)
		if s2.MasterKey == sec[keys.Master] || r2.Fingerprint(s2.MasterKey) != added.Fingerprint {
			t.Fatal("the promoted key does not sign")
		}
		if len(s2.Previous) != 1 || s2.Previous[0].Secret != sec[keys.Master] || !s2.Previous[0].RetiredAt.Equal(t0.Add(2*time.Second)) {
			t.Fatalf("the old key must be retired and verify: %+v", s2.Previous)
		}

		// A live instance that never acknowledges holds promotion until the grace period.
		r3, added3, err := st.Rotate(ctx, keys.System, false, t0.Add(3*time.Second), keep)
		if err != nil {
			t.Fatal(err)
		}
		st.Heartbeat(ctx, keyring.Instance{ID: "a", RingVersion: r3.Version}, t0.Add(4*time.Second)) //nolint:errcheck
		st.Heartbeat(ctx, keyring.Instance{ID: "b", RingVersion: 1}, t0.Add(4*time.Second))          //nolint:errcheck
		if _, p, _ := st.Promote(ctx, t0.Add(5*time.Second), grace, live, keep); len(p) != 0 {
			t.Fatal("promoted while b has not acknowledged")
		}
		// b's heartbeat goes stale: it no longer counts as live.
		if _, p, _ := st.Promote(ctx, t0.Add(10*time.Second), grace, live, keep); len(p) != 1 || p[0].Fingerprint != added3.Fingerprint {
			t.Fatalf("an instance without heartbeat must not hold promotion: %v", p)
		}

		// Application key: replaced at once (clients present it; nothing verifies with it).
		r4, app, err := st.Rotate(ctx, keys.Application, false, t0.Add(11*time.Second), keep)
		if err != nil || app.State != keyring.Current {
			t.Fatalf("application rotation: %+v %v", app, err)
		}
		s4, _ := r4.Secrets(nil)
		if s4.ApplicationKey == sec[keys.Application] || r4.Fingerprint(s4.ApplicationKey) != app.Fingerprint {
			t.Fatal("application key not replaced")
		}

		// revoke-previous drops the retired master keys at promotion; retired keys expire after keep.
		if _, _, err := st.Rotate(ctx, keys.Master, true, t0.Add(12*time.Second), keep); err != nil {
			t.Fatal(err)
		}
		r5, _, err := st.Promote(ctx, t0.Add(30*time.Second), grace, live, keep)
		if err != nil {
			t.Fatal(err)
		}
		s5, _ := r5.Secrets(nil)
		if len(s5.Previous) != 0 {
			t.Fatalf("revoke-previous kept %d master keys", len(s5.Previous))
		}
		if len(s5.SystemPrevious) != 1 {
			t.Fatalf("system previous: %d", len(s5.SystemPrevious))
		}
		// Once the retired system key has outlived keep, the next change prunes it.
		r6, _, err := st.Rotate(ctx, keys.Application, false, t0.Add(2*keep), keep)
		if err != nil {
			t.Fatal(err)
		}
		if s6, _ := r6.Secrets(nil); len(s6.SystemPrevious) != 0 {
			t.Fatal("expired retired key not pruned")
		}
	})
}

func TestCheckAndDeclared(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sec := initial()
		// Without a KEK: fingerprints only.
		decl := keyring.NewStore(db, nil)
		r, created, err := decl.Init(ctx, sec, t0)
		if err != nil || !created || r.Sealed() {
			t.Fatalf("declared Init: %v %v", err, created)
		}
		if _, err := r.Secrets(nil); !errors.Is(err, keyring.ErrNotSealed) {
			t.Fatalf("declared Secrets: %v", err)
		}
		if _, _, err := decl.Rotate(ctx, keys.Master, false, t0, time.Hour); !errors.Is(err, keyring.ErrNotSealed) {
			t.Fatalf("declared Rotate: %v", err)
		}
		src := map[keyring.Kind]string{keys.Master: "MS_MasterKey", keys.Application: "keys.json", keys.System: "keys.json"}
		if err := r.Check(sec, src); err != nil {
			t.Fatal(err)
		}
		other := map[keyring.Kind]string{keys.Master: keys.Generate(), keys.Application: sec[keys.Application]}
		err = r.Check(other, src)
		var mm *keyring.MismatchError
		if !errors.As(err, &mm) || len(mm.Lines) != 1 {
			t.Fatalf("mismatch: %v", err)
		}
		msg := err.Error()
		cur, _ := r.Current(keys.Master)
		if !strings.Contains(msg, "MS_MasterKey") || !strings.Contains(msg, cur.Fingerprint) || !strings.Contains(msg, r.Fingerprint(other[keys.Master])) {
			t.Fatalf("message must name the source and both fingerprints: %s", msg)
		}
		for _, v := range []string{sec[keys.Master], other[keys.Master]} {
			if strings.Contains(msg, v) {
				t.Fatal("the message contains a key")
			}
		}
		// A KEK arrives: the declared ring is sealed with the same keys, never with others.
		kek := newKEK(t)
		if _, _, err := keyring.NewStore(db, kek).Init(ctx, initial(), t0); !errors.As(err, &mm) {
			t.Fatalf("sealing with other keys: %v", err)
		}
		sealed, _, err := keyring.NewStore(db, kek).Init(ctx, sec, t0)
		if err != nil || !sealed.Sealed() {
			t.Fatalf("upgrade: %v", err)
		}
		s, err := sealed.Secrets(nil)
		if err != nil || s.MasterKey != sec[keys.Master] {
			t.Fatalf("upgraded secrets: %v", err)
		}
	})
}
