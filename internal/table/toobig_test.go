package table

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestTooBigFromRawReads: a read through store.QueryRaw (SQLite's in-place reader, its own error
// type) that would build a value over the length limit is the client's error, as through
// database/sql.
func TestTooBigFromRawReads(t *testing.T) {
	db, err := store.OpenWith(context.Background(), storetest.SQLiteURL(t), t.TempDir(), store.Options{Schema: store.Migrate, SQLiteMaxLength: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &Schema{Name: "t"}
	r, err := db.QueryRaw(context.Background(), `SELECT printf('%.*c', 2000, 'x')`)
	if err == nil {
		for r.Next() {
		}
		err = r.Err()
		r.Close()
	}
	var ie *InputError
	if !errors.As(queryError(s, err), &ie) {
		t.Errorf("QueryRaw over the length limit (%v) is not a client error", err)
	}
	_, err = db.ExecContext(context.Background(), `SELECT printf('%.*c', 2000, 'x')`)
	if !errors.As(queryError(s, err), &ie) {
		t.Errorf("database/sql over the length limit (%v) is not a client error", err)
	}
	if errors.As(queryError(s, errors.New("other")), &ie) {
		t.Error("any error is a client error")
	}
}
