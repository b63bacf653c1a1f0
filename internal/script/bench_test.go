package script_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/table"
)

// BenchmarkInsert measures what a pass-through insert script (request.execute()) adds to an insert:
// compare ns/op of the two sub-benchmarks.
//
//	go test ./internal/script -run '^$' -bench BenchmarkInsert -benchtime 3s
func BenchmarkInsert(b *testing.B) {
	e := newEnv(b, nil, map[string]string{
		"datamodel.json": `{"tables":[{"name":"Plain","permissions":{"*":"public"},"columns":{"text":"string"}},
			{"name":"Scripted","permissions":{"*":"public"},"columns":{"text":"string"}}]}`,
		"table/Scripted.insert.js": `function insert(item, user, request) { request.execute(); }`,
	})
	h := &table.Handler{Service: e.svc, Log: nil, Scripts: &script.TableHook{Engine: e.engine}}
	ctx := httpx.WithCaller(context.Background(), &auth.Caller{AppKey: true})
	for _, name := range []string{"Plain", "Scripted"} {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest(http.MethodPost, "/tables/"+name, strings.NewReader(`{"text":"hello"}`)).WithContext(ctx)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusCreated {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkAPI is one custom API call (the JavaScript half of bench/scripts.sh without the network).
func BenchmarkAPI(b *testing.B) {
	e := newEnv(b, nil, map[string]string{
		"api/hello.json": `{"routes":{"*":{"get":{"permission":"public"}}}}`,
		"api/hello.js":   `exports.get = function (request, response) { response.send(200, { message: 'hello', n: 1 }); };`,
	})
	h := &script.APIHandler{Engine: e.engine}
	ctx := httpx.WithCaller(context.Background(), &auth.Caller{})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, "/api/hello", nil).WithContext(ctx)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkPassThroughInsert isolates what a pass-through insert script adds to an insert: the
// default operation is replaced by a canned 201 answer (no database), so ns/op of "script" minus
// ns/op of "direct" is the script's own latency.
//
//	go test ./internal/script -run '^$' -bench BenchmarkPassThroughInsert -benchtime 3s
func BenchmarkPassThroughInsert(b *testing.B) {
	e := newEnv(b, nil, map[string]string{
		"datamodel.json":           `{"tables":[{"name":"Scripted","permissions":{"*":"public"}}]}`,
		"table/Scripted.insert.js": `function insert(item, user, request) { request.execute(); }`,
	})
	hook := &script.TableHook{Engine: e.engine}
	body := `{"text":"hello","n":1,"done":false}`
	answer := []byte(`{"text":"hello","n":1,"done":false,"id":"5f1c4a4e-2f6e-4a43-9d0e-8c1f6d7f0b1a"}`)
	def := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(answer) //nolint:errcheck
	}
	ctx := httpx.WithCaller(context.Background(), &auth.Caller{AppKey: true})
	call := &table.ScriptCall{Table: "Scripted", Op: "insert", Caller: &auth.Caller{AppKey: true}, Default: def, DefaultRead: def}
	b.Run("direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := httptest.NewRequest(http.MethodPost, "/tables/Scripted", strings.NewReader(body)).WithContext(ctx)
			w := httptest.NewRecorder()
			def(w, r)
		}
	})
	b.Run("script", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := httptest.NewRequest(http.MethodPost, "/tables/Scripted", strings.NewReader(body)).WithContext(ctx)
			w := httptest.NewRecorder()
			hook.ServeTableScript(w, r, call)
			if w.Code != http.StatusCreated {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}
