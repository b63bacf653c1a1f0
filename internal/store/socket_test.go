package store_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestPostgresOverUnixSocket runs Gatehouse's PostgreSQL path over the server's Unix socket, the
// transport docs/operations.md recommends when PostgreSQL runs on the same host: the URL form
// postgres://user@/db?host=/dir opens, migrates, writes, and reads alone and pipelined, and start-up
// describes it as a socket (no TLS, no warning).
func TestPostgresOverUnixSocket(t *testing.T) {
	tcp := storetest.PostgresURL(t)
	admin := storetest.Open(t, tcp)
	ctx := context.Background()
	var dirs string
	var port int
	if err := admin.QueryRowContext(ctx, `SELECT current_setting('unix_socket_directories'), current_setting('port')::int`).Scan(&dirs, &port); err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSpace(strings.Split(dirs, ",")[0])
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d", port))); dir == "" || err != nil {
		t.Skipf("the PostgreSQL server's socket directory %q is not on this machine (%v)", dirs, err)
	}
	u, err := url.Parse(tcp)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("host", dir)
	q.Set("port", fmt.Sprint(port))
	q.Del("sslmode")
	u.Host, u.RawQuery = "", q.Encode()
	db := storetest.Open(t, u.String())
	if want := "unix socket " + dir; db.Transport.Description != want || db.Transport.Warning != "" {
		t.Errorf("transport %+v, want %q and no warning", db.Transport, want)
	}
	var socket bool
	if err := db.QueryRowContext(ctx, `SELECT inet_server_addr() IS NULL`).Scan(&socket); err != nil || !socket {
		t.Fatalf("connected over a socket: %v (%v)", socket, err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE socket_rows (id int PRIMARY KEY, v text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO socket_rows SELECT x, 'v' || x FROM generate_series(1, 50) x`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 1; i <= 50; i++ {
		wg.Go(func() {
			r, err := db.QueryRaw(ctx, `SELECT id, v FROM socket_rows WHERE id = $1`, int64(i))
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			if !r.Next() || r.Int64(0) != int64(i) || string(r.Text(1)) != fmt.Sprintf("v%d", i) {
				errs <- fmt.Errorf("read %d: wrong row", i)
				return
			}
			errs <- r.Err()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
