package table_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// BenchmarkReadTop10 measures GET /tables/movies?$top=10 through the whole middleware chain with an
// app token, on SQLite with 248 rows (no network: see bench/tables.sh for the HTTP figure).
func BenchmarkReadTop10(b *testing.B) {
	e := movieEnv(b)
	benchGet(b, e.srv.Handler(), "/tables/movies?$top=10", e.token("custom:bench"))
}

// benchGet measures one GET of path with the token through h.
func benchGet(b *testing.B, h http.Handler, path, tok string) {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("X-ZUMO-AUTH", tok)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkReadPerUser measures GET /tables/Notes?$top=10 on a per-user table (50 rows of each of
// two users) through the whole middleware chain, on SQLite: bench/all.sh's per-user scenario.
func BenchmarkReadPerUser(b *testing.B) {
	db := storetest.Open(b, storetest.SQLiteURL(b))
	e := newEnvTB(b, db)
	tok := e.token("custom:bench")
	for i := 0; i < 50; i++ {
		for _, t := range []string{tok, e.token("custom:other")} {
			r := e.do("POST", "/tables/Notes", fmt.Sprintf(`{"text":"note %d","n":%d}`, i, i), "v2", "X-ZUMO-AUTH", t)
			if r.status != 201 {
				b.Fatalf("seed: %d %s", r.status, r.body)
			}
		}
	}
	benchGet(b, e.srv.Handler(), "/tables/Notes?$top=10", tok)
}

// BenchmarkLookup measures GET /tables/movies/m042 through the whole middleware chain with an app
// token, on SQLite: bench/all.sh's lookup scenario.
func BenchmarkLookup(b *testing.B) {
	e := movieEnv(b)
	benchGet(b, e.srv.Handler(), "/tables/movies/m042", e.token("custom:bench"))
}

// movieEnv is an environment on SQLite with 248 movies, m000 to m247.
func movieEnv(b *testing.B) *env {
	b.Helper()
	e := newEnvTB(b, storetest.Open(b, storetest.SQLiteURL(b)))
	for i := 0; i < 248; i++ {
		r := e.do("POST", "/tables/movies", fmt.Sprintf(`{"id":"m%03d","title":"Movie %d","year":%d}`, i, i, 1950+i%70), "v2")
		if r.status != 201 {
			b.Fatalf("seed: %d %s", r.status, r.body)
		}
	}
	return e
}
