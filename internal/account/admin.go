package account

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/jsonx"

	"github.com/gatehouse/gatehouse/internal/password"
)

// Add creates an account as an administrator. An empty password creates an account that cannot log
// in until a password is set (set-password or a reset link).
func (s *Service) Add(ctx context.Context, email, pw string, verified bool) (*Account, error) {
	addr, key, err := s.normEmail(email)
	if err != nil {
		return nil, err
	}
	hash := ""
	if pw != "" {
		pwN, err := s.o.Policy.NormalizePassword(pw)
		if err != nil {
			return nil, err
		}
		if hash, err = s.o.Hasher.Hash(ctx, pwN); err != nil {
			return nil, err
		}
	}
	now := s.o.Now()
	a := &Account{ID: newID(), Email: addr, EmailKey: key, PasswordHash: hash, PasswordStamp: newSecret(), EmailVerified: verified, CreatedAt: now, UpdatedAt: now}
	if err := s.o.Store.Create(ctx, a); err != nil {
		return nil, err
	}
	if err := s.link(ctx, a); err != nil {
		s.o.Store.Delete(ctx, a.ID) //nolint:errcheck // best effort: the error below is the one to report
		return nil, err
	}
	s.o.Log.Info("account added by admin", "account_id", a.ID)
	return a, nil
}

// Find looks an account up by id, token user id ("custom:<id>" or a legacy id) or email address.
func (s *Service) Find(ctx context.Context, ref string) (*Account, error) {
	if strings.ContainsAny(ref, "@\uFF20") { // "@" or its fullwidth form, which the email profile maps to "@"
		_, key, err := s.normEmail(ref)
		if err != nil {
			return nil, err
		}
		return s.o.Store.ByEmailKey(ctx, key)
	}
	if a, err := s.o.Store.ByID(ctx, ref); err == nil || !errors.Is(err, ErrNotFound) {
		return a, err
	}
	return s.o.Store.ByTokenUserID(ctx, ref)
}

// List returns up to limit accounts after the given id (pagination by id).
func (s *Service) List(ctx context.Context, after string, limit int) ([]*Account, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.o.Store.List(ctx, after, limit)
}

// SetDisabled disables (revoking every token of the user) or re-enables an account.
func (s *Service) SetDisabled(ctx context.Context, id string, disabled bool) error {
	a, err := s.o.Store.ByID(ctx, id)
	if err != nil {
		return err
	}
	if err := s.o.Store.SetDisabled(ctx, id, disabled, s.o.Now()); err != nil {
		return err
	}
	if s.o.Users != nil {
		if err := s.o.Users.SetDisabled(ctx, a.TokenUserID(), disabled); err != nil {
			return err
		}
	}
	s.o.Log.Info("account disabled state changed by admin", "account_id", id, "disabled", disabled)
	return nil
}

// SetPassword sets a password as an administrator (policy applies); outstanding reset links die and
// every session of the user is revoked.
func (s *Service) SetPassword(ctx context.Context, id, pw string) error {
	if pw == "" {
		return fmt.Errorf("%w: password", ErrMissing)
	}
	pwN, err := s.o.Policy.NormalizePassword(pw)
	if err != nil {
		return err
	}
	a, err := s.o.Store.ByID(ctx, id)
	if err != nil {
		return err
	}
	hash, err := s.o.Hasher.Hash(ctx, pwN)
	if err != nil {
		return err
	}
	if err := s.o.Store.SetPassword(ctx, id, hash, newSecret(), s.o.Now()); err != nil {
		return err
	}
	if s.o.Users != nil {
		if err := s.o.Users.RevokeAll(ctx, a.TokenUserID()); err != nil {
			return err
		}
	}
	s.o.Log.Info("password set by admin", "account_id", id)
	return nil
}

// ---- import ----

// ImportRow is one record of an import file: the user columns of FORMATS.md and the raw columns for
// password.ParseImportRecord.
type ImportRow struct {
	Line int               // 1-based line (CSV: file line of the record; JSON: element index + 1)
	Cols map[string]string // column name → value ("" = not given)
	Err  error             // a row that could not even be read
}

// ImportResult reports one row.
type ImportResult struct {
	Line      int    `json:"line"`
	Email     string `json:"email,omitempty"`
	Status    string `json:"status"` // created, exists, error
	AccountID string `json:"accountId,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ImportSummary counts the results.
type ImportSummary struct {
	Created int            `json:"created"`
	Exists  int            `json:"exists"`
	Errors  int            `json:"errors"`
	Rows    []ImportResult `json:"rows"`
}

// ParseImportFile reads CSV (header row) or JSON (an array of objects, or one object per line). format
// is "csv", "json" or "" to detect by the first non-space byte. A structurally broken file is an
// error; a broken row is reported in that row.
func ParseImportFile(r io.Reader, format string) ([]ImportRow, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("account: import: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if format == "" {
		format = "csv"
		if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '[' || t[0] == '{') {
			format = "json"
		}
	}
	switch format {
	case "csv":
		return parseCSV(data)
	case "json":
		return parseJSON(data)
	}
	return nil, fmt.Errorf("account: import: unknown format %q (csv or json)", format)
}

func parseCSV(data []byte) ([]ImportRow, error) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("account: import: CSV header: %w", err)
	}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(header[i]))
	}
	if !containsStr(header, "email") {
		return nil, errors.New("account: import: CSV header has no email column")
	}
	var rows []ImportRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && pe.Err == csv.ErrFieldCount {
				rows = append(rows, ImportRow{Line: pe.StartLine, Err: errors.New("wrong number of fields")})
				continue
			}
			return nil, fmt.Errorf("account: import: %w", err)
		}
		line, _ := cr.FieldPos(0)
		row := ImportRow{Line: line, Cols: map[string]string{}}
		if len(rec) != len(header) {
			row.Err = fmt.Errorf("%d fields, the header has %d", len(rec), len(header))
		} else {
			for i, v := range rec {
				row.Cols[header[i]] = v
			}
		}
		rows = append(rows, row)
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func parseJSON(data []byte) ([]ImportRow, error) {
	var objs []json.RawMessage
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		if err := jsonx.Unmarshal(t, &objs); err != nil {
			return nil, fmt.Errorf("account: import: JSON: %w", err)
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
				objs = append(objs, append(json.RawMessage(nil), l...))
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("account: import: %w", err)
		}
	}
	rows := make([]ImportRow, 0, len(objs))
	for i, raw := range objs {
		row := ImportRow{Line: i + 1, Cols: map[string]string{}}
		var m map[string]any
		if err := jsonx.UnmarshalUseNumber(raw, &m); err != nil || m == nil {
			row.Err = errors.New("not a JSON object (or one with a duplicate member name)")
			rows = append(rows, row)
			continue
		}
		// Column names are case-insensitive here (as in CSV headers), so two members that differ only
		// in case would make the row's meaning depend on map order: refuse the row.
		seen := map[string]string{}
		for k := range m {
			if prev, dup := seen[strings.ToLower(k)]; dup {
				row.Err = fmt.Errorf("fields %q and %q differ only in case", prev, k)
			}
			seen[strings.ToLower(k)] = k
		}
		if row.Err != nil {
			rows = append(rows, row)
			continue
		}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				row.Cols[strings.ToLower(k)] = x
			case json.Number:
				row.Cols[strings.ToLower(k)] = x.String()
			case bool:
				row.Cols[strings.ToLower(k)] = strconv.FormatBool(x)
			case nil:
			default:
				row.Err = fmt.Errorf("field %q must be a string, number or boolean", k)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Import creates an account per row. It is idempotent: a row whose address already has an account is
// reported as "exists" and changes nothing, so re-running a file (after fixing the rows that failed)
// is safe. Errors are reported per row; the import never stops early.
func (s *Service) Import(ctx context.Context, rows []ImportRow) ImportSummary {
	sum := ImportSummary{Rows: []ImportResult{}}
	for _, row := range rows {
		res := s.importRow(ctx, row)
		switch res.Status {
		case "created":
			sum.Created++
		case "exists":
			sum.Exists++
		default:
			sum.Errors++
		}
		sum.Rows = append(sum.Rows, res)
		if ctx.Err() != nil {
			break
		}
	}
	return sum
}

var hashColumns = password.ImportFields()

func (s *Service) importRow(ctx context.Context, row ImportRow) ImportResult {
	res := ImportResult{Line: row.Line, Status: "error"}
	if row.Err != nil {
		res.Error = row.Err.Error()
		return res
	}
	res.Email = row.Cols["email"]
	addr, key, err := s.normEmail(strings.TrimSpace(row.Cols["email"]))
	if err != nil {
		res.Error = "email: " + errText(err)
		return res
	}
	res.Email = addr
	verified := false
	if v := strings.TrimSpace(row.Cols["email_verified"]); v != "" {
		if verified, err = strconv.ParseBool(v); err != nil {
			res.Error = "email_verified: must be true or false"
			return res
		}
	}
	legacy := strings.TrimSpace(row.Cols["user_id"])
	if legacy != "" && (len(legacy) > 512 || strings.ContainsFunc(legacy, func(r rune) bool { return r < 0x20 || r == 0x7f })) {
		res.Error = "user_id: at most 512 characters, no control characters"
		return res
	}
	if legacy != "" && !strings.Contains(legacy, ":") {
		res.Error = "user_id: must be a full user id with its provider prefix, e.g. Custom:123"
		return res
	}
	hash := ""
	given := false
	for _, c := range hashColumns {
		if strings.TrimSpace(row.Cols[c]) != "" {
			given = true
		}
	}
	if given {
		rec, err := password.ParseImportRecord(row.Cols)
		if err == nil {
			hash, err = s.o.Hasher.Import(rec)
		}
		if err != nil {
			res.Error = redactSecrets(errText(err), row.Cols)
			return res
		}
	}
	if existing, err := s.o.Store.ByEmailKey(ctx, key); err == nil {
		res.Status, res.AccountID = "exists", existing.ID
		return res
	} else if !errors.Is(err, ErrNotFound) {
		res.Error = "database: " + err.Error()
		return res
	}
	now := s.o.Now()
	a := &Account{ID: newID(), Email: addr, EmailKey: key, PasswordHash: hash, PasswordStamp: newSecret(), EmailVerified: verified, LegacyUserID: legacy, CreatedAt: now, UpdatedAt: now}
	if err := s.o.Store.Create(ctx, a); err != nil {
		if errors.Is(err, ErrDuplicate) {
			// A concurrent import created the address, or the user_id belongs to another account.
			if existing, err2 := s.o.Store.ByEmailKey(ctx, key); err2 == nil {
				res.Status, res.AccountID = "exists", existing.ID
				return res
			}
			res.Error = "user_id: already used by another account"
			return res
		}
		res.Error = "database: " + err.Error()
		return res
	}
	if err := s.link(ctx, a); err != nil {
		s.o.Store.Delete(ctx, a.ID) //nolint:errcheck // best effort; the row reports the error
		res.Error = "users directory: " + err.Error()
		return res
	}
	res.Status, res.AccountID = "created", a.ID
	return res
}

// secretColumns are the import columns whose values are (parts of) credentials: a report never
// repeats them.
var secretColumns = []string{"hash", "salt", "signer_key", "salt_separator"}

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// redactSecrets replaces each quoted part of msg that repeats a piece of a credential column of the
// row (a parser quoting the start of a malformed hash, say) with "(redacted)".
func redactSecrets(msg string, cols map[string]string) string {
	return quoted.ReplaceAllStringFunc(msg, func(q string) string {
		v, err := strconv.Unquote(q)
		if err != nil {
			return `"(redacted)"`
		}
		v = strings.TrimSuffix(v, "...")
		if len(v) < 3 {
			return q
		}
		for _, c := range secretColumns {
			if strings.Contains(cols[c], v) {
				return `"(redacted)"`
			}
		}
		return q
	})
}

// errText is an error's message without the package prefix.
func errText(err error) string {
	msg := err.Error()
	for _, p := range []string{"account: ", "password: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
