package table

import (
	"context"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
)

// A read whose rows are only rendered (no read script sees them) goes straight from the database's
// buffers into the response: each column is asked for the one type its schema says it holds
// (store.RawRows), so no value is boxed into an interface, copied into a Go string or kept in a Row.
// Scripts, the console and writes keep reading Rows (Query, Get).

// Positions of the system columns in a read's select list (selectList), user columns after them.
const (
	rawID = iota
	rawCreatedAt
	rawUpdatedAt
	rawVersion
	rawDeleted
	rawUser
)

// renderPage runs a page read and appends its rows to b as JSON objects separated by commas. n is
// the number of rows; count the total when q asked for it (else -1). limit, when positive, is the
// most b may grow to (q.MaxBytes): a longer page is a resultTooLarge error.
func (st *SQL) renderPage(ctx context.Context, s *Schema, r pageRead, v view, b []byte) (out []byte, n int, count int64, err error) {
	p, err := st.plan(s, r)
	if err != nil {
		return nil, 0, 0, err
	}
	args, err := p.bind(r)
	if err != nil {
		return nil, 0, 0, err
	}
	q := r.q
	rr, err := st.queryRaw(ctx, p.query, args...)
	if err != nil {
		return nil, 0, 0, queryError(s, err)
	}
	defer rr.Close()
	var size int64
	for rr.Next() {
		if q.MaxBytes > 0 {
			// The same accounting as a read into Rows (rowSize): every value read counts, also of
			// the columns $select leaves out.
			if size += rawRowSize(s, rr); size > q.MaxBytes {
				return nil, 0, 0, resultTooLarge(q.MaxBytes)
			}
		}
		if n > 0 {
			b = append(b, ',')
		}
		if b, err = appendRawRow(b, s, rr, v); err != nil {
			return nil, 0, 0, err
		}
		if q.MaxBytes > 0 && int64(len(b)) > q.MaxBytes {
			return nil, 0, 0, resultTooLarge(q.MaxBytes) // JSON escaping made the page longer than its values
		}
		n++
	}
	if err := rr.Err(); err != nil {
		return nil, 0, 0, queryError(s, err)
	}
	count = -1
	if p.count != "" {
		cargs, err := p.bindCount(r)
		if err != nil {
			return nil, 0, 0, err
		}
		if err := st.queryRow(ctx, p.count, cargs...).Scan(&count); err != nil {
			return nil, 0, 0, queryError(s, err)
		}
	}
	return b, n, count, nil
}

// renderItem reads the item id (deleted ones included) that also matches restrict and appends it to
// b as a JSON object; it returns ErrNotFound when there is none. The version and the deleted flag
// come along for the caller's ETag and visibility checks.
func (st *SQL) renderItem(ctx context.Context, s *Schema, id any, restrict odata.Expr, v view, b []byte) (out []byte, version string, deleted bool, err error) {
	w, args, err := st.where(s, id, restrict, 1)
	if err != nil {
		return nil, "", false, err
	}
	rr, err := st.queryRaw(ctx, "SELECT "+selectList(s)+" FROM "+quote(s.SQLName)+" WHERE "+w, args...)
	if err != nil {
		return nil, "", false, queryError(s, err)
	}
	defer rr.Close()
	if !rr.Next() {
		if err := rr.Err(); err != nil {
			return nil, "", false, queryError(s, err)
		}
		return nil, "", false, ErrNotFound
	}
	version, deleted = string(rr.Text(rawVersion)), rr.Bool(rawDeleted)
	if b, err = appendRawRow(b, s, rr, v); err != nil {
		return nil, "", false, err
	}
	return b, version, deleted, nil
}

// queryRaw runs a read consumed in place.
func (st *SQL) queryRaw(ctx context.Context, q string, args ...any) (store.RawRows, error) {
	return st.db.QueryRaw(ctx, q, args...)
}

// rawRowSize is rowSize for the current row of rr.
func rawRowSize(s *Schema, rr store.RawRows) int64 {
	n := int64(128 + len(rr.Text(rawVersion)))
	if s.IDType != IntegerID {
		n += int64(len(rr.Text(rawID)))
	}
	for i, c := range s.cols {
		n += int64(len(s.order[i])) + 16
		if c.Type == String && !rr.Null(rawUser+i) {
			n += int64(len(rr.Text(rawUser + i)))
		}
	}
	return n
}

// appendRawRow is appendRow for the current row of rr.
func appendRawRow(b []byte, s *Schema, rr store.RawRows, v view) ([]byte, error) {
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, name)
		b = append(b, ':')
	}
	if v.cols == nil || v.includeID {
		field("id")
		if s.IDType == IntegerID {
			b = strconv.AppendInt(b, rr.Int64(rawID), 10)
		} else {
			b = appendString(b, rr.Text(rawID))
		}
	}
	sys := v.system(s)
	names := v.names()
	var err error
	if sys&sysCreatedAt != 0 {
		field(names[0])
		if b, err = appendRawTime(b, rr, rawCreatedAt); err != nil {
			return nil, err
		}
	}
	if sys&sysUpdatedAt != 0 {
		field(names[1])
		if b, err = appendRawTime(b, rr, rawUpdatedAt); err != nil {
			return nil, err
		}
	}
	if sys&sysVersion != 0 {
		field(names[2])
		b = appendString(b, rr.Text(rawVersion))
	}
	if sys&sysDeleted != 0 {
		field(names[3])
		b = strconv.AppendBool(b, rr.Bool(rawDeleted))
	}
	for i, k := range s.order {
		if v.cols != nil && !v.cols[k] {
			continue
		}
		c := s.cols[i]
		field(c.Name)
		col := rawUser + i
		if rr.Null(col) {
			b = append(b, "null"...)
			continue
		}
		switch c.Type {
		case Date:
			if b, err = appendRawTime(b, rr, col); err != nil {
				return nil, err
			}
		case Boolean:
			b = strconv.AppendBool(b, rr.Bool(col))
		case Number:
			b = appendFloat(b, rr.Float64(col))
		default:
			b = appendString(b, rr.Text(col))
		}
	}
	return append(b, '}'), nil
}

func appendRawTime(b []byte, rr store.RawRows, col int) ([]byte, error) {
	t, err := rr.Time(col)
	if err != nil {
		return nil, err
	}
	return appendTime(b, t), nil
}

// appendTime writes an instant as the wire's date string.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, DateFormat)
	return append(b, '"')
}
