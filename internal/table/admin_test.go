package table_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

func TestSpecRequest(t *testing.T) {
	for i := 0; i < 20; i++ { // map order must not matter
		sp, err := table.SpecRequest{Name: "t", Permissions: map[string]string{"read": "public", "*": "user", "delete": "admin"}}.Spec()
		if err != nil {
			t.Fatal(err)
		}
		if sp.Permissions["read"].String() != "public" || sp.Permissions["insert"].String() != "user" || sp.Permissions["delete"].String() != "admin" {
			t.Fatalf("permissions %v", sp.Permissions)
		}
	}
	for _, bad := range []table.SpecRequest{
		{Name: "t", IDType: "uuid"},
		{Name: "t", Columns: map[string]string{"a": "blob"}},
		{Name: "t", Columns: map[string]string{"__a": "string"}},
		{Name: "t", Columns: map[string]string{"createdAt": "date"}},
		{Name: "t", Permissions: map[string]string{"select": "public"}},
		{Name: "t", Permissions: map[string]string{"read": "everyone"}},
	} {
		if _, err := bad.Spec(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := table.ParseAssignments("a=string,b"); err == nil {
		t.Error("bad assignment list accepted")
	}
}

func TestAdminAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.adminMount()
		m := []string{"X-ZUMO-MASTER", masterKey}
		expect(t, e.do("GET", "/admin/tables", ""), 401)
		expect(t, e.do("GET", "/admin/tables", "", "X-ZUMO-APPLICATION", appKey), 401)
		expect(t, e.do("POST", "/admin/tables", `{"name":"Books","idType":"integer","columns":{"title":"string","pages":"number"},"permissions":{"*":"public","delete":"admin"},"softDelete":true,"indexes":["title","pages"]}`, m...),
			201, `"name":"Books"`, `"idType":"integer"`, `"delete":"admin"`, `"read":"public"`, `"pages":"number"`)
		expect(t, e.do("POST", "/admin/tables", `{"name":"books"}`, m...), 409)
		expect(t, e.do("POST", "/admin/tables", `{"name":"bad name"}`, m...), 400)
		expect(t, e.do("POST", "/admin/tables", `{"name":"x","columns":{"a":"blob"}}`, m...), 400, "blob")
		// The new table serves immediately, with its permissions.
		expect(t, e.do("POST", "/tables/books", `{"title":"Dune","pages":412}`), 201, `"id":1`)
		expect(t, e.do("DELETE", "/tables/books/1", ""), 401)
		expect(t, e.do("PATCH", "/admin/tables/BOOKS", `{"permissions":{"read":"admin"},"columns":{"isbn":"string"}}`, m...), 200, `"read":"admin"`, `"isbn":"string"`)
		expect(t, e.do("GET", "/tables/books", ""), 401)
		expect(t, e.do("PATCH", "/admin/tables/books", `{"indexes":["nosuch"]}`, m...), 400, "no column nosuch to index")
		expect(t, e.do("PATCH", "/admin/tables/books", `{"indexes":["isbn"]}`, m...), 200)
		expect(t, e.do("PATCH", "/admin/tables/books", `{"idType":"string"}`, m...), 400, "cannot change")
		expect(t, e.do("PATCH", "/admin/tables/books", `{"columns":{"title":"number"}}`, m...), 400, "exists with type string")
		r := e.do("GET", "/admin/tables", "", m...)
		expect(t, r, 200, `"name":"Books"`, `"name":"TodoItem"`)
		expect(t, e.do("GET", "/admin/tables/books", "", m...), 200, `"softDelete":true`)
		expect(t, e.do("DELETE", "/admin/tables/books", "", m...), 204)
		expect(t, e.do("GET", "/admin/tables/books", "", m...), 404)
		expect(t, e.do("GET", "/tables/books", "", m...), 404)
		expect(t, e.do("PUT", "/admin/tables", "{}", m...), 405)
		if r := e.do("GET", "/admin/tables/nope/extra", "", m...); r.status != 404 || !strings.Contains(r.body, "error") {
			t.Fatalf("nested path: %d %s", r.status, r.body)
		}
	})
}

func TestDeclaredIndexes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		newEnv(t, db) // declares Movies with indexes on year and title
		q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN (?, ?)`
		if db.Dialect == store.Postgres {
			q = `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN ($1, $2)`
		}
		var n int
		if err := db.QueryRow(q, declaredIndexName("gh_movies", "year"), declaredIndexName("gh_movies", "title")).Scan(&n); err != nil || n != 2 {
			t.Fatalf("declared indexes: %d %v", n, err)
		}
		newEnv(t, db) // a restart with the same declaration is fine
	})
}

// declaredIndexName is the name of a declared index on one or more columns (lower-case names):
// <table>_ox_<columns joined by "_">_<6 hex digits of the SHA-256 of the columns joined by "+">.
func declaredIndexName(sqlTable string, cols ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(cols, "+")))
	return sqlTable + "_ox_" + strings.Join(cols, "_") + "_" + hex.EncodeToString(sum[:3])
}
