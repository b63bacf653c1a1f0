package keyring

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Errors of the stored ring.
var (
	ErrNoRing   = errors.New("keyring: the database has no key ring yet")
	ErrTampered = errors.New("keyring: the key ring in the database failed authentication (modified, rolled back or corrupted); refusing to use it")
	ErrNeedKEK  = errors.New("keyring: the key ring in the database is sealed, and no key-encryption key is configured (set GATEHOUSE_KEY_ENCRYPTION_KEY or key_encryption_key_file)")
	errConflict = errors.New("keyring: concurrent update")
)

// WrongKEKError reports a ring sealed under another key-encryption key (by key id, never the key).
type WrongKEKError struct{ Ring, Configured string }

func (e *WrongKEKError) Error() string {
	return fmt.Sprintf("keyring: the key ring in the database is sealed under key-encryption key %s, but the configured key-encryption key is %s", e.Ring, e.Configured)
}

// Store reads and writes the ring and the instance registry.
type Store struct {
	db  *store.DB
	kek *KEK // nil: the ring can only be declared (fingerprints)
}

// NewStore returns a store; kek may be nil (declared rings only).
func NewStore(db *store.DB, kek *KEK) *Store { return &Store{db: db, kek: kek} }

// CanSeal reports whether this store has a key-encryption key.
func (s *Store) CanSeal() bool { return s.kek != nil }

type doc struct {
	Salt string `json:"salt"`
	Keys []Key  `json:"keys"`
}

func additionalData(kekID string, version int64, docJSON []byte) []byte {
	ad := []byte("gatehouse key ring v1\x00" + kekID + "\x00" + strconv.FormatInt(version, 10) + "\x00")
	return append(ad, docJSON...)
}

// Load reads the ring; a sealed ring is opened with the KEK (and refused if it was tampered with).
func (s *Store) Load(ctx context.Context) (*Ring, error) {
	var version, updated int64
	var docJSON, kekID, sealed string
	err := s.db.QueryRowContext(ctx, `SELECT version, doc, kek_id, sealed, updated_at FROM gatehouse_key_ring WHERE id = 1`).
		Scan(&version, &docJSON, &kekID, &sealed, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoRing
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: load: %w", err)
	}
	var d doc
	if err := json.Unmarshal([]byte(docJSON), &d); err != nil {
		return nil, ErrTampered
	}
	r := &Ring{Version: version, UpdatedAt: time.UnixMilli(updated).UTC(), KEKID: kekID, Salt: d.Salt, Keys: d.Keys}
	if kekID == "" {
		if sealed != "" {
			return nil, ErrTampered
		}
		return r, nil
	}
	if s.kek == nil {
		return nil, ErrNeedKEK
	}
	if s.kek.id != kekID {
		return nil, &WrongKEKError{Ring: kekID, Configured: s.kek.id}
	}
	pt, err := s.kek.open(sealed, additionalData(kekID, version, []byte(docJSON)))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(pt, &r.secrets); err != nil {
		return nil, ErrTampered
	}
	for _, x := range r.Keys {
		if r.secret(x) == "" || r.Fingerprint(r.secret(x)) != x.Fingerprint {
			return nil, ErrTampered
		}
	}
	return r, nil
}

// write stores r as version r.Version+1 if the stored version is still r.Version (0: create).
func (s *Store) write(ctx context.Context, r *Ring, now time.Time) error {
	next := r.Version + 1
	docJSON, err := json.Marshal(doc{Salt: r.Salt, Keys: r.Keys})
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	sealed := ""
	if r.KEKID != "" {
		if s.kek == nil || s.kek.id != r.KEKID {
			return ErrNeedKEK
		}
		pt, err := json.Marshal(r.secrets)
		if err != nil {
			return fmt.Errorf("keyring: %w", err)
		}
		sealed = s.kek.seal(pt, additionalData(r.KEKID, next, docJSON))
	}
	var res sql.Result
	if r.Version == 0 {
		res, err = s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_key_ring (id, version, doc, kek_id, sealed, updated_at)
			VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`), next, string(docJSON), r.KEKID, sealed, now.UnixMilli())
	} else {
		res, err = s.db.ExecContext(ctx, s.db.Rebind(`UPDATE gatehouse_key_ring SET version = ?, doc = ?, kek_id = ?, sealed = ?, updated_at = ?
			WHERE id = 1 AND version = ?`), next, string(docJSON), r.KEKID, sealed, now.UnixMilli(), r.Version)
	}
	if err != nil {
		return fmt.Errorf("keyring: write: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("keyring: write: %w", err)
	} else if n == 0 {
		return errConflict
	}
	r.Version, r.UpdatedAt = next, now.UTC()
	return nil
}

// update applies fn to the stored ring and writes it, retrying on concurrent updates. fn returns
// false when there is nothing to write.
func (s *Store) update(ctx context.Context, now time.Time, fn func(r *Ring) (bool, error)) (*Ring, error) {
	for range 20 {
		r, err := s.Load(ctx)
		if err != nil {
			return nil, err
		}
		changed, err := fn(r)
		if err != nil || !changed {
			return r, err
		}
		if err := s.write(ctx, r, now); errors.Is(err, errConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return r, nil
	}
	return nil, errors.New("keyring: the ring keeps changing under this update; try again")
}

// Init creates the ring from the given secrets (all three kinds), sealed when the store has a KEK,
// else declared by fingerprint. If a ring exists it is returned unchanged (created false) — except a
// declared ring whose fingerprints the secrets match, which a store with a KEK upgrades to a sealed
// one. The caller checks the secrets against an existing ring (Ring.Check).
func (s *Store) Init(ctx context.Context, secrets map[Kind]string, now time.Time) (r *Ring, created bool, err error) {
	for _, k := range []Kind{"master", "application", "system"} {
		if secrets[k] == "" {
			return nil, false, fmt.Errorf("keyring: init: no %s key", k)
		}
	}
	kekID := ""
	if s.kek != nil {
		kekID = s.kek.id
	}
	r, err = s.Load(ctx)
	if errors.Is(err, ErrNoRing) {
		r = newRing(secrets, kekID, now.UTC())
		if err := s.write(ctx, r, now); errors.Is(err, errConflict) {
			r, err = s.Load(ctx) // another instance created it first
			return r, false, err
		} else if err != nil {
			return nil, false, err
		}
		return r, true, nil
	}
	if err != nil || r.Sealed() || s.kek == nil {
		return r, false, err
	}
	if err := r.Check(secrets, map[Kind]string{"master": "configuration", "application": "configuration", "system": "configuration"}); err != nil {
		return nil, false, fmt.Errorf("keyring: cannot seal the declared ring with other keys: %w", err)
	}
	upgraded, err := s.update(ctx, now, func(cur *Ring) (bool, error) {
		if cur.Sealed() {
			return false, nil
		}
		cur.KEKID, cur.secrets = s.kek.id, map[string]string{}
		for _, x := range cur.Keys {
			if x.State == Current {
				cur.secrets[string(x.Kind)+":"+x.Fingerprint] = secrets[x.Kind]
			}
		}
		cur.prune(now, 0)
		kept := cur.Keys[:0:0]
		for _, x := range cur.Keys {
			if cur.secrets[string(x.Kind)+":"+x.Fingerprint] != "" {
				kept = append(kept, x)
			}
		}
		cur.Keys = kept
		return true, nil
	})
	return upgraded, false, err
}

// Rotate publishes a new key of a kind (see Ring.rotate) and prunes expired retired keys.
func (s *Store) Rotate(ctx context.Context, k Kind, revokePrevious bool, now time.Time, keep time.Duration) (*Ring, Key, error) {
	var added Key
	r, err := s.update(ctx, now, func(r *Ring) (bool, error) {
		if !r.Sealed() {
			return false, ErrNotSealed
		}
		var err error
		added, err = r.rotate(k, now.UTC(), revokePrevious, r.Version+1)
		r.prune(now, keep)
		return err == nil, err
	})
	return r, added, err
}

// RotateSigning publishes a new signing key of alg (accepted, signing once every instance has it and
// lead has passed; current at once if it is the ring's first) and prunes expired retired keys.
func (s *Store) RotateSigning(ctx context.Context, alg string, lead time.Duration, now time.Time, keep time.Duration) (*Ring, Key, error) {
	var added Key
	r, err := s.update(ctx, now, func(r *Ring) (bool, error) {
		if !r.Sealed() {
			return false, ErrNotSealed
		}
		if len(r.Pending()) > 0 {
			for _, p := range r.Pending() {
				if p.Kind == keys.Signing {
					return false, ErrRotationPending
				}
			}
		}
		var err error
		added, err = r.addSigning(alg, now.UTC(), lead, r.Version+1)
		r.prune(now, keep)
		return err == nil, err
	})
	return r, added, err
}

// EnsureSigning gives the ring a signing key of alg: nothing to do when the current one (or one
// pending) has that algorithm; else a new key, current at once if the ring has none, else published
// ahead of signing as with RotateSigning (a change of tokens.algorithm).
func (s *Store) EnsureSigning(ctx context.Context, alg string, lead time.Duration, now time.Time, keep time.Duration) (*Ring, error) {
	return s.update(ctx, now, func(r *Ring) (bool, error) {
		if !r.Sealed() {
			return false, ErrNotSealed
		}
		for _, x := range r.Keys {
			if x.Kind == keys.Signing && x.State == Accepted {
				return false, nil // a rotation is under way: it decides
			}
			if x.Kind == keys.Signing && x.State == Current && x.Alg == alg {
				return false, nil
			}
		}
		_, err := r.addSigning(alg, now.UTC(), lead, r.Version+1)
		r.prune(now, keep)
		return err == nil, err
	})
}

// Promote promotes the accepted keys that every live instance (heartbeat within liveness) has
// loaded, or that were published more than grace ago. It returns the ring and what it promoted.
func (s *Store) Promote(ctx context.Context, now time.Time, grace, liveness, keep time.Duration) (*Ring, []Key, error) {
	var promoted []Key
	r, err := s.update(ctx, now, func(r *Ring) (bool, error) {
		promoted = nil
		if len(r.Pending()) == 0 || !r.Sealed() {
			return false, nil
		}
		live, err := s.Live(ctx, now, liveness)
		if err != nil {
			return false, err
		}
		promoted = r.promote(now.UTC(), grace, live)
		r.prune(now, keep)
		return len(promoted) > 0, nil
	})
	return r, promoted, err
}

// Heartbeat registers or refreshes an instance (its acknowledgement of a ring version included).
func (s *Store) Heartbeat(ctx context.Context, in Instance, now time.Time) error {
	ck := make([]string, len(in.ConfigKeys))
	for i, k := range in.ConfigKeys {
		ck[i] = string(k)
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_instances (id, host, started_at, heartbeat_at, ring_version, config_keys)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
		ring_version = CASE WHEN excluded.ring_version > gatehouse_instances.ring_version THEN excluded.ring_version ELSE gatehouse_instances.ring_version END`),
		in.ID, in.Host, in.StartedAt.UnixMilli(), now.UnixMilli(), in.RingVersion, strings.Join(ck, ","))
	if err != nil {
		return fmt.Errorf("keyring: heartbeat: %w", err)
	}
	return nil
}

// Leave removes an instance that is shutting down (it no longer has to acknowledge rotations).
func (s *Store) Leave(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_instances WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("keyring: leave: %w", err)
	}
	return nil
}

// Live lists the instances whose last heartbeat is within liveness of now; older rows (instances that
// died without leaving) are deleted once they are ten times older.
func (s *Store) Live(ctx context.Context, now time.Time, liveness time.Duration) ([]Instance, error) {
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_instances WHERE heartbeat_at < ?`), now.Add(-10*liveness).UnixMilli()); err != nil {
		return nil, fmt.Errorf("keyring: instances: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT id, host, started_at, heartbeat_at, ring_version, config_keys FROM gatehouse_instances
		WHERE heartbeat_at >= ? ORDER BY started_at`), now.Add(-liveness).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("keyring: instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var in Instance
		var started, hb int64
		var ck string
		if err := rows.Scan(&in.ID, &in.Host, &started, &hb, &in.RingVersion, &ck); err != nil {
			return nil, fmt.Errorf("keyring: instances: %w", err)
		}
		in.StartedAt, in.HeartbeatAt = time.UnixMilli(started).UTC(), time.UnixMilli(hb).UTC()
		for _, k := range strings.Split(ck, ",") {
			if k != "" {
				in.ConfigKeys = append(in.ConfigKeys, Kind(k))
			}
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// DB is the database the store uses.
func (s *Store) DB() *store.DB { return s.db }
