package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestQueryRawBothDatabases: the same read gives the same values through QueryRaw on SQLite (the
// in-place reader) and PostgreSQL (the database/sql fallback).
func TestQueryRawBothDatabases(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE rawboth (n BIGINT, s TEXT, f DOUBLE PRECISION, b INTEGER, d BIGINT)`); err != nil {
			t.Fatal(err)
		}
		when := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
		for i, s := range []any{"héllo", "", nil} {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO rawboth VALUES (?, ?, ?, ?, ?)`), i, s, float64(i)+0.5, i%2, when.UnixMilli()+int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		r, err := db.QueryRaw(ctx, db.Rebind(`SELECT n, s, f, b, d FROM rawboth WHERE n >= ? ORDER BY n`), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		want := []string{"héllo", "", ""}
		n := 0
		for r.Next() {
			tm, err := r.Time(4)
			if r.Int64(0) != int64(n) || string(r.Text(1)) != want[n] || r.Null(1) != (n == 2) || r.Float64(2) != float64(n)+0.5 ||
				r.Bool(3) != (n%2 == 1) || err != nil || !tm.Equal(when.Add(time.Duration(n)*time.Millisecond)) {
				t.Errorf("row %d: %d %q %v %v %v %v %v", n, r.Int64(0), r.Text(1), r.Null(1), r.Float64(2), r.Bool(3), tm, err)
			}
			n++
		}
		if err := r.Err(); err != nil || n != 3 {
			t.Fatalf("%d rows, %v", n, err)
		}
	})
}
