package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
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

// TestReadPipelinesSetting: database_pool.read_pipelines reaches the PostgreSQL reads (Pool's
// negative value turns pipelining off, a positive one sets the number of pipelines): with it off,
// concurrent reads are never pipelined; with it on, reads that queue go out together.
func TestReadPipelinesSetting(t *testing.T) {
	db := storetest.Open(t, storetest.PostgresURL(t))
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE pipe (id bigint PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO pipe SELECT g, 'v' || g FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	burst := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rr, err := db.QueryRaw(ctx, "SELECT id, v FROM pipe WHERE id = $1", int64(i%100+1))
				if err != nil {
					errs <- err
					return
				}
				for rr.Next() {
				}
				errs <- errors.Join(rr.Err(), rr.Close())
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Configure(store.Pool{MaxConns: 4, ReadPipelines: -1})
	for range 20 {
		burst()
	}
	if p, r := db.ReadPipelineStats(); p != 0 || r != 0 {
		t.Fatalf("pipelining off: %d pipelines carried %d reads", p, r)
	}
	db.Configure(store.Pool{MaxConns: 4, ReadPipelines: 2})
	deadline := time.Now().Add(10 * time.Second)
	for {
		burst()
		if _, r := db.ReadPipelineStats(); r > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no read was pipelined in 10 s of bursts of 32 concurrent reads on 4 connections")
		}
	}
}
