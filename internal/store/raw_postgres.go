package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// queryRawPostgres runs a read through pgx's own API on a connection of the database/sql pool and
// decodes the wire bytes of each row in place (pgRaw).
//
// Why not database/sql: its Rows hand every value to the driver as a driver.Value, so pgx's adapter
// decodes each column into an interface (an allocation for every int64, float64, time.Time and string)
// and database/sql then copies it again on Scan. pgx's Rows.RawValues gives the column bytes as they
// came off the wire, without either.
//
// Why a connection of the database/sql pool and not a pgx pool of its own: everything else (writes,
// transactions, advisory locks, LISTEN) goes through database/sql, and one instance has pgMaxConns
// connections in all; a second pool would split that budget (a read burst could not use connections
// idle in the other pool) or exceed it. Taking a connection with DB.Conn costs the same pool round
// as QueryContext does, and the pgx connection keeps its statement cache, shared with the
// database/sql path: a statement prepared by either is a single round trip (Bind, Execute, Sync) for
// both.
//
// The *pgx.Conn is used between Conn.Raw and Conn.Close, not only inside Raw's callback as its
// documentation asks. That is safe: database/sql hands a connection taken by DB.Conn to nobody else
// until Conn.Close and closes in-use connections only when they are released (DB.Close and
// SetConnMaxLifetime included), so nothing else touches it meanwhile. The callback form cannot serve
// an iterator that outlives the call without a goroutine per read.
func (db *DB) queryRawPostgres(ctx context.Context, query string, args []any) (RawRows, error) {
	// database/sql retries a statement that failed before anything was sent (a connection found dead
	// when used: the server restarted, a proxy dropped it) on another connection, up to twice, then on a
	// new one; pgx's adapter reports those as driver.ErrBadConn. Do the same.
	for attempt := 0; ; attempt++ {
		r, err := db.tryQueryRawPostgres(ctx, query, args)
		if err != nil && attempt < 2 && ctx.Err() == nil && pgconn.SafeToRetry(err) {
			continue
		}
		return r, err
	}
}

func (db *DB) tryQueryRawPostgres(ctx context.Context, query string, args []any) (RawRows, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var pc *pgx.Conn
	if err := conn.Raw(func(dc any) error {
		if c, ok := dc.(*stdlib.Conn); ok {
			pc = c.Conn()
		}
		return nil
	}); err != nil {
		conn.Close()
		return nil, err
	}
	if pc == nil { // not pgx's database/sql driver: read through database/sql
		conn.Close()
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		return RawFromSQL(rows)
	}
	rows, err := pc.Query(ctx, query, args...)
	if err != nil {
		release(conn, pc)
		return nil, ctxError(ctx, err)
	}
	// Read the first row now, as pgx's database/sql adapter does: an error the statement raises at once
	// (a division by zero, an out-of-range cast: SQLSTATE class 22) is QueryRaw's error, as on the
	// database/sql path, instead of surfacing only from Err after an empty iteration.
	more := rows.Next()
	if !more {
		if err := rows.Err(); err != nil {
			release(conn, pc)
			return nil, ctxError(ctx, err)
		}
	}
	r := &pgRaw{ctx: ctx, conn: conn, pc: pc, rows: rows, preloaded: true, more: more}
	r.init(pc.TypeMap(), rows.FieldDescriptions())
	if !more {
		r.release()
	}
	return r, nil
}

// release gives the connection back to the pool, or has database/sql drop it when pgx closed it (a
// cancelled read, a network error): pgx's adapter would only notice on the next use.
func release(conn *sql.Conn, pc *pgx.Conn) {
	if pc.IsClosed() {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	conn.Close()
}

// ctxError makes sure an error caused by the end of ctx says so (errors.Is(err, context.Canceled) or
// DeadlineExceeded), whatever form the driver gave it.
func ctxError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// pgKind is how a column's wire bytes are read.
type pgKind uint8

const (
	pgOther       pgKind = iota // decoded by pgx's type map (cold path)
	pgInt                       // int2, int4, int8 in binary
	pgFloat                     // float4, float8 in binary
	pgBool                      // bool in binary
	pgTimestamptz               // binary: µs since 2000-01-01 UTC
	pgTimestamp                 // binary: µs since 2000-01-01, no zone (read as UTC)
	pgDate                      // binary: days since 2000-01-01
	pgText                      // text-like types in either format, bytea in binary: the bytes as they are
)

func kindOf(fd pgconn.FieldDescription) pgKind {
	switch fd.DataTypeOID {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.UnknownOID:
		return pgText // their binary and text forms are the same bytes
	}
	if fd.Format != pgtype.BinaryFormatCode {
		return pgOther
	}
	switch fd.DataTypeOID {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return pgInt
	case pgtype.Float4OID, pgtype.Float8OID:
		return pgFloat
	case pgtype.BoolOID:
		return pgBool
	case pgtype.TimestamptzOID:
		return pgTimestamptz
	case pgtype.TimestampOID:
		return pgTimestamp
	case pgtype.DateOID:
		return pgDate
	case pgtype.ByteaOID:
		return pgText
	}
	return pgOther
}

// pgRaw reads a pgx result in place. The accessors answer as RawFromSQL does over pgx's database/sql
// adapter for the same column (TestRawPostgresAgrees), with one deliberate difference: a column pgx
// decodes through its type map (numeric, say) also answers Int64, Float64, Bool and Time when pgx can
// convert it, where database/sql's string box answers zero.
type pgRaw struct {
	pgCols
	ctx       context.Context
	conn      *sql.Conn // nil once released
	pc        *pgx.Conn
	rows      pgx.Rows
	preloaded bool // the first row was read by QueryRaw
	more      bool
	err       error
}

// pgCols decodes the columns of the current row (vals) of a pgx result.
type pgCols struct {
	tm       *pgtype.Map
	fds      []pgconn.FieldDescription
	kinds    []pgKind
	kindsArr [16]pgKind
	vals     [][]byte
	buf      []byte // Text of non-text columns, reset for each row
}

func (c *pgCols) init(tm *pgtype.Map, fds []pgconn.FieldDescription) {
	c.tm, c.fds = tm, fds
	if len(fds) <= len(c.kindsArr) {
		c.kinds = c.kindsArr[:len(fds)]
	} else {
		c.kinds = make([]pgKind, len(fds))
	}
	for i, fd := range fds {
		c.kinds[i] = kindOf(fd)
	}
}

func (r *pgRaw) Next() bool {
	if r.preloaded {
		r.preloaded = false
		if r.more {
			r.vals = r.rows.RawValues()
		}
		return r.more
	}
	if r.conn == nil {
		return false
	}
	r.buf = r.buf[:0]
	if !r.rows.Next() {
		r.vals = nil
		r.release()
		return false
	}
	r.vals = r.rows.RawValues()
	return true
}

// release closes the pgx rows and gives the connection back as soon as the rows are read to the end,
// as database/sql does, so a caller still rendering the last row holds no connection.
func (r *pgRaw) release() {
	if r.conn == nil {
		return
	}
	r.rows.Close()
	if err := r.rows.Err(); err != nil {
		r.err = ctxError(r.ctx, err)
	}
	release(r.conn, r.pc)
	r.conn = nil
}

func (r *pgRaw) Err() error {
	if r.err != nil {
		return r.err
	}
	if err := r.rows.Err(); err != nil {
		return ctxError(r.ctx, err)
	}
	return nil
}

func (r *pgRaw) Close() error {
	r.release()
	r.vals = nil
	return r.err
}

func (r *pgCols) Null(i int) bool { return r.vals[i] == nil }

func (r *pgCols) Int64(i int) int64 {
	v := r.vals[i]
	switch r.kinds[i] {
	case pgInt:
		return beInt(v)
	case pgFloat:
		return int64(beFloat(v))
	case pgBool:
		if len(v) == 1 && v[0] != 0 {
			return 1
		}
	case pgOther:
		var n int64
		if !r.numeric(i) {
			break
		}
		if r.scan(i, &n) {
			return n
		}
		var f float64
		if r.scan(i, &f) {
			return int64(f)
		}
	}
	return 0
}

func (r *pgCols) Float64(i int) float64 {
	v := r.vals[i]
	switch r.kinds[i] {
	case pgFloat:
		return beFloat(v)
	case pgInt:
		return float64(beInt(v))
	case pgOther:
		var f float64
		if r.numeric(i) && r.scan(i, &f) {
			return f
		}
	}
	return 0
}

func (r *pgCols) Bool(i int) bool {
	v := r.vals[i]
	switch r.kinds[i] {
	case pgBool:
		return len(v) == 1 && v[0] != 0
	case pgInt:
		return beInt(v) != 0
	case pgFloat:
		return beFloat(v) != 0
	case pgOther:
		var b bool
		return r.fds[i].DataTypeOID == pgtype.BoolOID && r.scan(i, &b) && b
	}
	return false
}

func (r *pgCols) Text(i int) []byte {
	v := r.vals[i]
	if v == nil {
		return nil
	}
	start := len(r.buf)
	switch r.kinds[i] {
	case pgText:
		return v
	case pgInt:
		r.buf = strconv.AppendInt(r.buf, beInt(v), 10)
	case pgFloat:
		r.buf = fmt.Append(r.buf, beFloat(v)) // as database/sql's fallback prints a float64
	case pgBool:
		r.buf = strconv.AppendBool(r.buf, len(v) == 1 && v[0] != 0)
	case pgTimestamptz, pgTimestamp, pgDate:
		t, err := r.time(i)
		if errors.Is(err, errInfinite) {
			// pgx gives an infinite date as the string database/sql's fallback prints
			if v[0]&0x80 == 0 {
				r.buf = append(r.buf, "infinity"...)
			} else {
				r.buf = append(r.buf, "-infinity"...)
			}
			break
		}
		if err != nil {
			return nil
		}
		if r.kinds[i] == pgTimestamptz {
			t = t.Local() // pgx decodes timestamptz in time.Local; the fallback prints that
		}
		r.buf = fmt.Append(r.buf, t)
	default:
		var s string
		if !r.scan(i, &s) {
			return v
		}
		r.buf = append(r.buf, s...)
	}
	return r.buf[start:len(r.buf):len(r.buf)]
}

func (r *pgCols) Time(i int) (time.Time, error) {
	if r.vals[i] == nil {
		return time.Time{}, fmt.Errorf("store: column %q is null, not a date", r.fds[i].Name)
	}
	switch r.kinds[i] {
	case pgTimestamptz, pgTimestamp, pgDate:
		return r.time(i)
	case pgInt:
		return time.UnixMilli(beInt(r.vals[i])).UTC(), nil
	case pgFloat:
		return time.UnixMilli(int64(beFloat(r.vals[i]))).UTC(), nil
	case pgOther:
		var t time.Time
		switch r.fds[i].DataTypeOID {
		case pgtype.TimestamptzOID, pgtype.TimestampOID, pgtype.DateOID:
			if r.scan(i, &t) {
				return t.UTC(), nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("store: column %q (type %d) is not a date", r.fds[i].Name, r.fds[i].DataTypeOID)
}

var errInfinite = errors.New("an infinite date")

// numeric says whether column i is of a number type (read by pgx's type map: numeric, or an integer
// or float in text form), the only ones Int64 and Float64 convert, as on database/sql's path.
func (r *pgCols) numeric(i int) bool {
	switch r.fds[i].DataTypeOID {
	case pgtype.NumericOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.Float4OID, pgtype.Float8OID:
		return true
	}
	return false
}

// pgEpoch is PostgreSQL's: its timestamps count from 2000-01-01.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func (r *pgCols) time(i int) (time.Time, error) {
	v := r.vals[i]
	switch r.kinds[i] {
	case pgTimestamptz, pgTimestamp:
		if len(v) != 8 {
			break
		}
		us := int64(binary.BigEndian.Uint64(v))
		if us == math.MaxInt64 || us == math.MinInt64 {
			return time.Time{}, fmt.Errorf("store: column %q: %w", r.fds[i].Name, errInfinite)
		}
		return time.Unix(pgEpoch+us/1e6, us%1e6*1e3).UTC(), nil
	case pgDate:
		if len(v) != 4 {
			break
		}
		d := int32(binary.BigEndian.Uint32(v))
		if d == math.MaxInt32 || d == math.MinInt32 {
			return time.Time{}, fmt.Errorf("store: column %q: %w", r.fds[i].Name, errInfinite)
		}
		return time.Date(2000, 1, 1+int(d), 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("store: column %q: malformed date", r.fds[i].Name)
}

// scan decodes column i into dst with pgx's type map, for the types and formats not read in place.
func (r *pgCols) scan(i int, dst any) bool {
	v := r.vals[i]
	if v == nil {
		return false
	}
	fd := r.fds[i]
	return r.tm.Scan(fd.DataTypeOID, fd.Format, v, dst) == nil
}

func beInt(v []byte) int64 {
	switch len(v) {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(v)))
	case 4:
		return int64(int32(binary.BigEndian.Uint32(v)))
	case 8:
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func beFloat(v []byte) float64 {
	switch len(v) {
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(v)))
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(v))
	}
	return 0
}
