package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// ErrNotFound is a registration or installation that does not exist.
var ErrNotFound = errors.New("push: not found")

// Registration is one device target: a v1 registration, or one row of a v2 installation (its
// native row, or one per template). A registration with a TemplateBody receives template sends
// (push.send); one without receives the platform's native sends (push.apns.send, ...).
type Registration struct {
	ID             string
	InstallationID string // "" for v1 registrations
	Platform       string
	Channel        string
	Tags           []string
	TemplateName   string
	TemplateBody   string
	Headers        map[string]string
	Expiry         string
	UserID         string // the authenticated caller that registered it ("" for anonymous)
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Message is one notification in the outbox, for one device.
type Message struct {
	ID             string
	Platform       string
	Channel        string
	RegistrationID string // "" for a send to a device token
	Payload        []byte
	Headers        map[string]string
	Expires        time.Time // zero: the platform's default
	CreatedAt      time.Time
	Attempts       int    // claims so far, this one included
	Lease          string // the claim's fencing token
	LastError      string
}

// Query selects registrations for a send.
type Query struct {
	Platform  string // "" for every platform
	Templates bool   // template registrations (push.send) rather than native ones
	Tag       string // registrations with this tag; "" for all
}

// Execer is what Enqueue writes with: the database, or the caller's transaction.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Store keeps registrations and the outbox in the database (SQLite or PostgreSQL).
type Store interface {
	// PutRegistration creates or replaces a v1 registration.
	PutRegistration(ctx context.Context, r Registration) error
	// PutInstallation replaces every row of installation id with rows (one transaction).
	PutInstallation(ctx context.Context, id string, rows []Registration) error
	Registration(ctx context.Context, id string) (Registration, error)
	// Installation returns an installation's rows (ErrNotFound when it has none).
	Installation(ctx context.Context, id string) ([]Registration, error)
	DeleteRegistration(ctx context.Context, id string) error
	DeleteInstallation(ctx context.Context, id string) error
	// ByChannel lists the registrations of one device; ByTag those with a tag (limit rows).
	ByChannel(ctx context.Context, platform, channel string) ([]Registration, error)
	ByTag(ctx context.Context, tag string, limit int) ([]Registration, error)
	// Candidates pages (by id, after the given one) through the registrations a send may reach.
	Candidates(ctx context.Context, q Query, after string, limit int) ([]Registration, error)
	// RemoveChannel deletes every registration of a device the platform reported gone.
	RemoveChannel(ctx context.Context, platform, channel string) (int, error)

	// Enqueue writes messages to the outbox through ex (the caller's transaction, or the database).
	Enqueue(ctx context.Context, ex Execer, msgs []Message) error
	// Claim leases up to n messages of a platform that are due at now until now+lease.
	Claim(ctx context.Context, platform string, now time.Time, lease time.Duration, n int) ([]Message, error)
	// Complete removes a delivered (or abandoned) message, if the lease is still the caller's.
	Complete(ctx context.Context, id, lease string) (bool, error)
	// CompleteMany is Complete for several messages in one statement (leases[i] goes with ids[i]).
	CompleteMany(ctx context.Context, ids, leases []string) error
	// Retry releases a message until at, recording the error, if the lease is still the caller's.
	Retry(ctx context.Context, id, lease string, at time.Time, lastError string) (bool, error)
	// Pending counts the messages in the outbox.
	Pending(ctx context.Context) (int64, error)
}

// SQLStore implements Store on a store.DB.
type SQLStore struct {
	db *store.DB
}

// NewStore returns the store of db.
func NewStore(db *store.DB) *SQLStore { return &SQLStore{db: db} }

// DB is the database the store writes to (for callers that enqueue in their own transaction).
func (s *SQLStore) DB() *store.DB { return s.db }

const regColumns = `id, installation_id, platform, channel, tags, template_name, template_body, headers, expiry, user_id, created_at, updated_at`

// regColumnsR is regColumns of the table aliased r.
const regColumnsR = `r.id, r.installation_id, r.platform, r.channel, r.tags, r.template_name, r.template_body, r.headers, r.expiry, r.user_id, r.created_at, r.updated_at`

func (s *SQLStore) q(query string) string { return s.db.Rebind(query) }

func (s *SQLStore) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("push: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("push: commit: %w", err)
	}
	return nil
}

func (s *SQLStore) insertReg(ctx context.Context, tx *sql.Tx, r Registration) error {
	tags, _ := json.Marshal(nonNil(r.Tags))
	headers, _ := json.Marshal(nonNilMap(r.Headers))
	now := time.Now()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = now
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO gatehouse_push_registrations (`+regColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.InstallationID, r.Platform, r.Channel, string(tags), r.TemplateName, r.TemplateBody, string(headers), r.Expiry, r.UserID,
		r.CreatedAt.UnixMilli(), r.UpdatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("push: insert registration: %w", err)
	}
	for _, t := range dedupe(r.Tags) {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO gatehouse_push_tags (tag, registration_id) VALUES (?, ?)`), t, r.ID); err != nil {
			return fmt.Errorf("push: insert tag: %w", err)
		}
	}
	return nil
}

func (s *SQLStore) deleteRegs(ctx context.Context, tx *sql.Tx, where string, args ...any) (int, error) {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM gatehouse_push_tags WHERE registration_id IN (SELECT id FROM gatehouse_push_registrations WHERE `+where+`)`), args...); err != nil {
		return 0, fmt.Errorf("push: delete tags: %w", err)
	}
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM gatehouse_push_registrations WHERE `+where), args...)
	if err != nil {
		return 0, fmt.Errorf("push: delete registrations: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PutRegistration implements Store.
func (s *SQLStore) PutRegistration(ctx context.Context, r Registration) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var created int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT created_at FROM gatehouse_push_registrations WHERE id = ?`), r.ID).Scan(&created)
		switch {
		case err == nil:
			r.CreatedAt = time.UnixMilli(created)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("push: read registration: %w", err)
		}
		if _, err := s.deleteRegs(ctx, tx, `id = ?`, r.ID); err != nil {
			return err
		}
		return s.insertReg(ctx, tx, r)
	})
}

// PutInstallation implements Store.
func (s *SQLStore) PutInstallation(ctx context.Context, id string, rows []Registration) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var created sql.NullInt64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT MIN(created_at) FROM gatehouse_push_registrations WHERE installation_id = ?`), id).Scan(&created); err != nil {
			return fmt.Errorf("push: read installation: %w", err)
		}
		if _, err := s.deleteRegs(ctx, tx, `installation_id = ?`, id); err != nil {
			return err
		}
		for _, r := range rows {
			r.InstallationID = id
			if created.Valid {
				r.CreatedAt = time.UnixMilli(created.Int64)
			}
			if err := s.insertReg(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *SQLStore) list(ctx context.Context, query string, args ...any) ([]Registration, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("push: query registrations: %w", err)
	}
	defer rows.Close()
	var out []Registration
	for rows.Next() {
		var r Registration
		var tags, headers string
		var created, updated int64
		if err := rows.Scan(&r.ID, &r.InstallationID, &r.Platform, &r.Channel, &tags, &r.TemplateName, &r.TemplateBody, &headers,
			&r.Expiry, &r.UserID, &created, &updated); err != nil {
			return nil, fmt.Errorf("push: scan registration: %w", err)
		}
		if err := json.Unmarshal([]byte(tags), &r.Tags); err != nil {
			return nil, fmt.Errorf("push: registration %s tags: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(headers), &r.Headers); err != nil {
			return nil, fmt.Errorf("push: registration %s headers: %w", r.ID, err)
		}
		if len(r.Headers) == 0 {
			r.Headers = nil
		}
		r.CreatedAt, r.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("push: query registrations: %w", err)
	}
	return out, nil
}

// Registration implements Store.
func (s *SQLStore) Registration(ctx context.Context, id string) (Registration, error) {
	rs, err := s.list(ctx, `SELECT `+regColumns+` FROM gatehouse_push_registrations WHERE id = ?`, id)
	if err != nil {
		return Registration{}, err
	}
	if len(rs) == 0 {
		return Registration{}, ErrNotFound
	}
	return rs[0], nil
}

// Installation implements Store.
func (s *SQLStore) Installation(ctx context.Context, id string) ([]Registration, error) {
	rs, err := s.list(ctx, `SELECT `+regColumns+` FROM gatehouse_push_registrations WHERE installation_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, ErrNotFound
	}
	return rs, nil
}

// DeleteRegistration implements Store.
func (s *SQLStore) DeleteRegistration(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.deleteRegs(ctx, tx, `id = ? AND installation_id = ''`, id)
		if err == nil && n == 0 {
			err = ErrNotFound
		}
		return err
	})
}

// DeleteInstallation implements Store.
func (s *SQLStore) DeleteInstallation(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.deleteRegs(ctx, tx, `installation_id = ?`, id)
		if err == nil && n == 0 {
			err = ErrNotFound
		}
		return err
	})
}

// ByChannel implements Store.
func (s *SQLStore) ByChannel(ctx context.Context, platform, channel string) ([]Registration, error) {
	return s.list(ctx, `SELECT `+regColumns+` FROM gatehouse_push_registrations WHERE platform = ? AND channel = ? ORDER BY id`, platform, channel)
}

// ByTag implements Store.
func (s *SQLStore) ByTag(ctx context.Context, tag string, limit int) ([]Registration, error) {
	return s.list(ctx, `SELECT `+regColumns+` FROM gatehouse_push_registrations WHERE id IN (SELECT registration_id FROM gatehouse_push_tags WHERE tag = ?) ORDER BY id LIMIT ?`, tag, limit)
}

// Candidates implements Store: one range scan of the tag index (or of the registrations) per page,
// so that paging through a large audience stays linear.
func (s *SQLStore) Candidates(ctx context.Context, q Query, after string, limit int) ([]Registration, error) {
	var where []string
	var args []any
	from := `gatehouse_push_registrations r`
	key := `r.id`
	if q.Tag != "" {
		from = `gatehouse_push_tags t JOIN gatehouse_push_registrations r ON r.id = t.registration_id`
		key = `t.registration_id`
		where = append(where, `t.tag = ?`)
		args = append(args, q.Tag)
	}
	where = append(where, key+` > ?`)
	args = append(args, after)
	if q.Platform != "" {
		where = append(where, `r.platform = ?`)
		args = append(args, q.Platform)
	}
	if q.Templates {
		where = append(where, `r.template_body <> ''`)
	} else {
		where = append(where, `r.template_body = ''`)
	}
	args = append(args, limit)
	return s.list(ctx, `SELECT `+regColumnsR+` FROM `+from+` WHERE `+strings.Join(where, " AND ")+` ORDER BY `+key+` LIMIT ?`, args...)
}

// RemoveChannel implements Store.
func (s *SQLStore) RemoveChannel(ctx context.Context, platform, channel string) (int, error) {
	var n int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = s.deleteRegs(ctx, tx, `platform = ? AND channel = ?`, platform, channel)
		return err
	})
	return n, err
}

// enqueueBatch is how many messages one INSERT carries (8 parameters each).
const enqueueBatch = 200

// Enqueue implements Store.
func (s *SQLStore) Enqueue(ctx context.Context, ex Execer, msgs []Message) error {
	if ex == nil {
		ex = s.db
	}
	for len(msgs) > 0 {
		n := min(len(msgs), enqueueBatch)
		batch := msgs[:n]
		msgs = msgs[n:]
		var b strings.Builder
		b.WriteString(`INSERT INTO gatehouse_push_outbox (id, platform, channel, registration_id, payload, headers, expires_at, created_at, available_at, attempts, lease, last_error) VALUES `)
		args := make([]any, 0, 9*n)
		for i, m := range batch {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '')`)
			h, _ := json.Marshal(nonNilMap(m.Headers))
			var exp int64
			if !m.Expires.IsZero() {
				exp = m.Expires.UnixMilli()
			}
			created := m.CreatedAt.UnixMilli()
			args = append(args, m.ID, m.Platform, m.Channel, m.RegistrationID, m.Payload, string(h), exp, created, created)
		}
		if _, err := ex.ExecContext(ctx, s.q(b.String()), args...); err != nil {
			return fmt.Errorf("push: enqueue: %w", err)
		}
	}
	return nil
}

// Claim implements Store. PostgreSQL skips rows another instance is claiming (FOR UPDATE SKIP
// LOCKED); SQLite has a single writer, so the UPDATE is the claim.
func (s *SQLStore) Claim(ctx context.Context, platform string, now time.Time, lease time.Duration, n int) ([]Message, error) {
	token := newID()
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rows, err := s.db.QueryContext(ctx, s.q(`UPDATE gatehouse_push_outbox SET lease = ?, available_at = ?, attempts = attempts + 1
WHERE id IN (SELECT id FROM gatehouse_push_outbox WHERE platform = ? AND available_at <= ? ORDER BY available_at LIMIT ?`+lock+`)
RETURNING id, platform, channel, registration_id, payload, headers, expires_at, created_at, attempts, last_error`),
		token, now.Add(lease).UnixMilli(), platform, now.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("push: claim: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var headers string
		var exp, created int64
		if err := rows.Scan(&m.ID, &m.Platform, &m.Channel, &m.RegistrationID, &m.Payload, &headers, &exp, &created, &m.Attempts, &m.LastError); err != nil {
			return nil, fmt.Errorf("push: claim: %w", err)
		}
		if err := json.Unmarshal([]byte(headers), &m.Headers); err != nil {
			return nil, fmt.Errorf("push: message %s headers: %w", m.ID, err)
		}
		if len(m.Headers) == 0 {
			m.Headers = nil
		}
		if exp != 0 {
			m.Expires = time.UnixMilli(exp)
		}
		m.CreatedAt = time.UnixMilli(created)
		m.Lease = token
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("push: claim: %w", err)
	}
	return out, nil
}

// Complete implements Store.
func (s *SQLStore) Complete(ctx context.Context, id, lease string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gatehouse_push_outbox WHERE id = ? AND lease = ?`), id, lease)
	if err != nil {
		return false, fmt.Errorf("push: complete: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// CompleteMany implements Store.
func (s *SQLStore) CompleteMany(ctx context.Context, ids, leases []string) error {
	if len(ids) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`DELETE FROM gatehouse_push_outbox WHERE `)
	args := make([]any, 0, 2*len(ids))
	for i := range ids {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString(`(id = ? AND lease = ?)`)
		args = append(args, ids[i], leases[i])
	}
	if _, err := s.db.ExecContext(ctx, s.q(b.String()), args...); err != nil {
		return fmt.Errorf("push: complete: %w", err)
	}
	return nil
}

// Retry implements Store.
func (s *SQLStore) Retry(ctx context.Context, id, lease string, at time.Time, lastError string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE gatehouse_push_outbox SET available_at = ?, lease = '', last_error = ? WHERE id = ? AND lease = ?`),
		at.UnixMilli(), truncate(lastError, 500), id, lease)
	if err != nil {
		return false, fmt.Errorf("push: retry: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Pending implements Store.
func (s *SQLStore) Pending(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM gatehouse_push_outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("push: count outbox: %w", err)
	}
	return n, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func dedupe(tags []string) []string {
	seen := make(map[string]bool, len(tags))
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
