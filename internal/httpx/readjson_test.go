package httpx_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// TestReadJSONStrict: request bodies of the authentication code decode with JSON.parse semantics
// (issue 10 finding 7): exact member names, one value, duplicate names refused with 400.
func TestReadJSONStrict(t *testing.T) {
	read := func(body string, dst any) error {
		return httpx.ReadJSON(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), dst)
	}
	var c struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := read(`{"email":"a@example.com","Email":"victim@example.com","PASSWORD":"x"}`, &c); err != nil {
		t.Fatal(err)
	}
	if c.Email != "a@example.com" || c.Password != "" {
		t.Fatalf("wrong-case members used: %+v", c)
	}
	for _, bad := range []string{`{"email":"a","email":"b"}`, `{"email":"a"} {}`, `{"email":"\udc00"}`, ``, `{`} {
		err := read(bad, &c)
		var se *httpx.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
			t.Errorf("%q: %v, want 400", bad, err)
		}
	}
}
