package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// freeLoopbackPort returns a port free on 127.0.0.1 now (for a server whose public URL must be
// known before it starts).
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// amrOf reads the amr claim of an app token (the signature is checked by the server's own use of it).
func amrOf(t *testing.T, tok string) []string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a token: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.AMR
}

// TestPasskeys registers passkeys, signs in with them (passwordless and as a second factor) and
// removes one, in headless Chromium with a virtual authenticator, on Gatehouse's own passkeys page.
// WebAuthn needs a relying party id that is a domain: the page is opened as http://localhost:PORT,
// which is also the public URL (localhost is a secure context without TLS).
func TestPasskeys(t *testing.T) {
	alone(t)
	needTools(t, true)
	port := strconv.Itoa(freeLoopbackPort(t))
	public := "http://localhost:" + port
	g := startGatehouse(t, GatehouseOptions{
		Env:  map[string]string{"GATEHOUSE_ACCOUNTS_ENABLED": "true", "GATEHOUSE_PUBLIC_URL": public},
		Args: []string{"--listen", "127.0.0.1:" + port},
	})
	var res struct {
		Register      int            `json:"register"`
		PasswordLogin map[string]any `json:"passwordLogin"`
		Passkey1      struct {
			ID, Name string
		} `json:"passkey1"`
		Passwordless  map[string]any `json:"passwordless"`
		SecondWithPwd string         `json:"secondWithPwd"`
		SameDevice    string         `json:"sameDevice"`
		Challenge     struct {
			MFARequired bool     `json:"mfaRequired"`
			Methods     []string `json:"methods"`
		} `json:"challenge"`
		SecondFactor map[string]any `json:"secondFactor"`
		Newer        string         `json:"newer"`
		Stale        struct {
			Status int            `json:"status"`
			Body   map[string]any `json:"body"`
		} `json:"stale"`
		Fresh  int `json:"fresh"`
		Replay struct {
			Status int            `json:"status"`
			Body   map[string]any `json:"body"`
		} `json:"replay"`
		ForeignResult struct {
			Status int            `json:"status"`
			Body   map[string]any `json:"body"`
		} `json:"foreignResult"`
		Listed                   []map[string]any `json:"listed"`
		AfterRemove              []map[string]any `json:"afterRemove"`
		AuthenticatorCredentials int              `json:"authenticatorCredentials"`
	}
	page := servePage(t, nil)
	runBrowser(t, "passkeys", page.URL(), g.URL, map[string]string{"email": "pia@example.com", "password": "correct horse battery", "passkeysURL": public + "/.auth/passkeys"}, &res)

	if res.Register != 202 || res.PasswordLogin["authenticationToken"] == nil {
		t.Fatalf("account: %d %v", res.Register, res.PasswordLogin)
	}
	if res.Passkey1.Name != "Laptop" || res.Passkey1.ID == "" {
		t.Fatalf("passkey %+v", res.Passkey1)
	}
	tok, _ := res.Passwordless["authenticationToken"].(string)
	if got := amrOf(t, tok); !slices.Equal(got, []string{"hwk", "mfa"}) {
		t.Fatalf("passwordless amr %v", got)
	}
	if !strings.Contains(res.SecondWithPwd, "multi-factor") {
		t.Fatalf("second passkey with a password-only token: %q", res.SecondWithPwd)
	}
	if res.SameDevice != "InvalidStateError" {
		t.Fatalf("a second passkey on the same authenticator: %q (the existing one is not excluded)", res.SameDevice)
	}
	if !res.Challenge.MFARequired || !slices.Contains(res.Challenge.Methods, "passkey") {
		t.Fatalf("password login of an account with passkeys: %+v", res.Challenge)
	}
	tok, _ = res.SecondFactor["authenticationToken"].(string)
	if got := amrOf(t, tok); !slices.Equal(got, []string{"pwd", "hwk", "mfa"}) {
		t.Fatalf("second factor amr %v", got)
	}
	if res.Newer != "ok" || res.Stale.Status != 401 || !strings.Contains(fmt.Sprint(res.Stale.Body["error"]), "counter") {
		t.Fatalf("stale assertion: newer %s, %+v", res.Newer, res.Stale)
	}
	if res.Fresh != 200 || res.Replay.Status != 401 || !strings.Contains(fmt.Sprint(res.Replay.Body["error"]), "challenge") {
		t.Fatalf("replayed assertion: fresh %d, %+v", res.Fresh, res.Replay)
	}
	if res.ForeignResult.Status != 401 || !strings.Contains(fmt.Sprint(res.ForeignResult.Body["error"]), "another browser") {
		t.Fatalf("answer from another browser: %+v", res.ForeignResult)
	}
	if len(res.Listed) != 2 || len(res.AfterRemove) != 1 || res.AfterRemove[0]["name"] != "Phone" {
		t.Fatalf("list %v, after removal %v", res.Listed, res.AfterRemove)
	}
	if res.AuthenticatorCredentials != 1 {
		t.Fatalf("authenticator holds %d credentials", res.AuthenticatorCredentials)
	}
}
