package httpx_test

import (
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// TestAPIVersion: the header wins; the query parameter is found in any case and percent-encoded,
// and a query without it is not mistaken for one.
func TestAPIVersion(t *testing.T) {
	for target, want := range map[string]string{
		"/tables/x?$top=10":                             "",
		"/tables/x":                                     "",
		"/tables/x?ZUMO-API-VERSION=2.0.0":              "2.0.0",
		"/tables/x?$top=1&zumo-api-version=2.0.0":       "2.0.0",
		"/tables/x?Zumo-Api-Version=3.0.0&$top=1":       "3.0.0",
		"/tables/x?zumo%2Dapi%2Dversion=2.0.0":          "2.0.0",
		"/tables/x?%7A%75%6D%6F-api-version=2.0.0":      "2.0.0",
		"/tables/x?$filter=name%20eq%20'zumo'&$top=2":   "",
		"/tables/x?$filter=x%20eq%20'zumo-api-version'": "",
	} {
		if got := httpx.APIVersion(httptest.NewRequest("GET", target, nil)); got != want {
			t.Errorf("%s: %q, want %q", target, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/tables/x?ZUMO-API-VERSION=3.0.0", nil)
	r.Header.Set("ZUMO-API-VERSION", "2.0.0")
	if got := httpx.APIVersion(r); got != "2.0.0" {
		t.Errorf("header: %q", got)
	}
}
