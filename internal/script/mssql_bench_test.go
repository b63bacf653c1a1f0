package script_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// BenchmarkMSSQLQuery: one guarded mssql.query SELECT (translation, authorizer or SET LOCAL
// transaction and session reset, 10 rows).
func BenchmarkMSSQLQuery(b *testing.B) {
	for _, c := range []struct{ name, dsn string }{{"sqlite", storetest.SQLiteURL(b)}, {"postgres", storetest.PostgresURL(b)}} {
		b.Run(c.name, func(b *testing.B) {
			db := storetest.Open(b, c.dsn)
			e := newEnv(b, db, sqlApp)
			m := script.NewSQL(db, e.svc)
			ctx := context.Background()
			for i := 0; i < 10; i++ {
				if _, err := m.Query(ctx, "INSERT INTO TodoItem (text, complete) VALUES (?, ?)", []any{"x", false}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rows, err := m.Query(ctx, "SELECT TOP 10 text, complete FROM TodoItem WHERE complete = ? ORDER BY text", []any{false})
				if err != nil || len(rows) != 10 {
					b.Fatal(rows, err)
				}
			}
		})
	}
}
