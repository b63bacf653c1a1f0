package server

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/signing"
)

// wellKnown serves /.well-known/jwks.json and /.well-known/openid-configuration from the signing keys
// in force. Their Cache-Control max-age is tokens.jwks_max_age: a rotation publishes a new key at
// least that long before it signs with it, so every cache holding the previous document has expired
// by then; retired keys stay published until their tokens have expired.
func (s *Server) wellKnown(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET", "HEAD")
		return
	}
	set := s.auth.SigningKeys()
	if set == nil {
		httpx.Error(w, r, http.StatusNotFound, "Asymmetric tokens are not enabled on this server (tokens.format).")
		return
	}
	now := time.Now()
	var body []byte
	var etag string
	switch r.URL.Path {
	case signing.JWKSPath:
		body, etag = set.JWKS(now)
		w.Header().Set("Content-Type", "application/jwk-set+json")
	case signing.DiscoveryPath:
		body = set.Discovery()
		sum := sha256.Sum256(body)
		etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		w.Header().Set("Content-Type", "application/json")
	default:
		httpx.Error(w, r, http.StatusNotFound, "Not found.")
		return
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(s.cfg.Tokens.JWKSMaxAge/time.Second)))
	w.Header().Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body) //nolint:errcheck // the client went away
	}
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
