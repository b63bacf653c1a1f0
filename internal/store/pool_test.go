package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestPoolSettings(t *testing.T) {
	p := store.Pool{MaxConns: 3, ConnMaxLifetime: time.Minute, StatementTimeout: 1500 * time.Millisecond, ConnectTimeout: 2500 * time.Millisecond}
	raw := storetest.PostgresURL(t)
	dsn := store.WithPool(raw, p)
	if !strings.Contains(dsn, "statement_timeout=1500") || !strings.Contains(dsn, "connect_timeout=3") {
		t.Fatalf("dsn: %s", dsn)
	}
	if got := store.WithPool(raw+"&connect_timeout=9", p); strings.Count(got, "connect_timeout") != 1 {
		t.Fatalf("an explicit connect_timeout must win: %s", got)
	}
	if got := store.WithPool("sqlite:///x/y.db", p); got != "sqlite:///x/y.db" {
		t.Fatalf("sqlite URL changed: %s", got)
	}
	db := storetest.Open(t, dsn)
	db.Configure(p)
	if st := db.Stats(); st.MaxOpenConnections != 3 {
		t.Fatalf("max open: %d", st.MaxOpenConnections)
	}
	ctx := context.Background()
	var v string
	if err := db.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&v); err != nil || v != "1500ms" {
		t.Fatalf("statement_timeout = %q, %v", v, err)
	}
	if _, err := db.ExecContext(ctx, "SELECT pg_sleep(3)"); err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Fatalf("a 3 s statement was not cancelled: %v", err)
	}
}
