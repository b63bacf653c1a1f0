// Command verifier is another service trusting Gatehouse users without any Gatehouse secret: it
// verifies the jwt tokens Gatehouse issues (tokens.format = jwt) with github.com/coreos/go-oidc/v3,
// which finds the keys through Gatehouse's /.well-known/openid-configuration and fetches
// /.well-known/jwks.json again whenever a token names a key it has not seen, so a rotation of
// Gatehouse's signing key needs nothing from this service.
//
//	VERIFIER_ISSUER=https://api.example.com VERIFIER_AUDIENCE=https://api.example.com verifier
//
// GET /whoami with "Authorization: Bearer <token>" answers the token's user and how they signed in.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "verifier:", err)
		os.Exit(1)
	}
}

func run() error {
	issuer := os.Getenv("VERIFIER_ISSUER")
	if issuer == "" {
		return errors.New("set VERIFIER_ISSUER to Gatehouse's public_url")
	}
	audience := os.Getenv("VERIFIER_AUDIENCE")
	if audience == "" {
		audience = issuer // Gatehouse's default tokens.audience
	}
	listen := os.Getenv("VERIFIER_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:9090"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	v, err := NewVerifier(ctx, issuer, audience)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen, Handler: Handler(v), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck
	}()
	slog.Info("verifying Gatehouse tokens", "issuer", issuer, "audience", audience, "listen", listen)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NewVerifier discovers the issuer (retrying for a while: Gatehouse may still be starting) and returns
// a verifier of its tokens for audience. Only the algorithms Gatehouse signs with are accepted.
func NewVerifier(ctx context.Context, issuer, audience string) (*oidc.IDTokenVerifier, error) {
	var last error
	for range 50 {
		p, err := oidc.NewProvider(ctx, issuer)
		if err == nil {
			return p.Verifier(&oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{oidc.ES256, oidc.EdDSA}}), nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("discovering %s: %w", issuer, last)
}

// Handler serves GET /whoami: 200 with the token's subject and amr, 401 without a valid token.
func Handler(v *oidc.IDTokenVerifier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "a Bearer token is required"}) //nolint:errcheck
			return
		}
		tok, err := v.Verify(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid token"}) //nolint:errcheck
			slog.Info("token refused", "err", err)
			return
		}
		var c struct {
			AMR []string `json:"amr"`
			IDP string   `json:"idp"`
		}
		if err := tok.Claims(&c); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid claims"}) //nolint:errcheck
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"user": tok.Subject, "idp": c.IDP, "amr": c.AMR}) //nolint:errcheck
	})
	return mux
}
