package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// opProcess is oidc-provider (js/oidc-op.mjs) running on 127.0.0.1.
type opProcess struct {
	Issuer string
	mu     sync.Mutex
	auths  []url.Values // authorization requests the provider saw
}

func (o *opProcess) authorizations() []url.Values {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]url.Values(nil), o.auths...)
}

func startOP(t *testing.T, clientID, secret string, redirects []string) *opProcess {
	t.Helper()
	needTools(t, false)
	rj, _ := json.Marshal(redirects)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, nodeBinary(), filepath.Join("js", "oidc-op.mjs"))
	cmd.Dir = shared.dir
	cmd.Env = envWith(map[string]string{"OP_CLIENT_ID": clientID, "OP_CLIENT_SECRET": secret, "OP_REDIRECT_URIS": string(rj), "NODE_ENV": "test"})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		terminate(cmd) //nolint:errcheck
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }() //nolint:errcheck
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
			<-done
		}
		if t.Failed() {
			t.Logf("oidc-provider stderr:\n%s", stderr.String())
		}
	})
	op := &opProcess{}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var line struct {
				Issuer    string            `json:"issuer"`
				Authorize map[string]string `json:"authorize"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			if line.Issuer != "" {
				ready <- line.Issuer
			}
			if line.Authorize != nil {
				v := url.Values{}
				for k, s := range line.Authorize {
					v.Set(k, s)
				}
				op.mu.Lock()
				op.auths = append(op.auths, v)
				op.mu.Unlock()
			}
		}
	}()
	select {
	case op.Issuer = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("oidc-provider did not start:\n%s", stderr.String())
	}
	return op
}

// tlsFront is an https front for Gatehouse (the JS SDK forces https for login): a TLS reverse proxy
// with a self-signed certificate, started before Gatehouse so that its URL can be the public_url.
type tlsFront struct {
	srv    *httptest.Server
	target atomic.Pointer[url.URL]
}

func startTLSFront(t *testing.T) *tlsFront {
	f := &tlsFront{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(f.target.Load())
		r.Out.Host = r.In.Host
		r.SetXForwarded()
	}}
	f.srv = httptest.NewUnstartedServer(proxy)
	// Chromium probes the self-signed certificate before the scenario's context accepts it.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// codeFlow gets an ID token from the provider as a native app would: authorization request with
// PKCE, the provider's login and consent forms, code redemption at the token endpoint.
func codeFlow(t *testing.T, op *opProcess, clientID, secret, redirect, user string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var final *url.URL
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), redirect) {
			final = r.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	verifier := base64.RawURLEncoding.EncodeToString([]byte("e2e-verifier-0123456789-0123456789-abcdef"))
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid email profile"}, "redirect_uri": {redirect},
		"state": {"s"}, "nonce": {"n"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	res, err := c.Get(op.Issuer + "/auth?" + q.Encode())
	action := regexp.MustCompile(`action="([^"]+)"`)
	for step := 0; step < 4 && final == nil; step++ {
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := action.FindSubmatch(body)
		if m == nil {
			t.Fatalf("no form at step %d (%d): %s", step, res.StatusCode, body)
		}
		form := url.Values{"prompt": {"consent"}}
		if bytes.Contains(body, []byte(`name="login"`)) {
			form = url.Values{"prompt": {"login"}, "login": {user}, "password": {"any"}}
		}
		next, perr := res.Request.URL.Parse(html.UnescapeString(string(m[1])))
		if perr != nil {
			t.Fatal(perr)
		}
		res, err = c.PostForm(next.String(), form)
	}
	if final == nil {
		t.Fatal("the provider never redirected back")
	}
	req, _ := http.NewRequest("POST", op.Issuer+"/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"},
		"code": {final.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tr struct {
		IDToken string `json:"id_token"`
	}
	b, _ := io.ReadAll(res.Body)
	if json.Unmarshal(b, &tr) != nil || tr.IDToken == "" {
		t.Fatalf("token endpoint %d: %s", res.StatusCode, b)
	}
	return tr.IDToken
}

// TestLoginWithRealOpenIDProvider: oidc-provider as the upstream identity provider of a generic
// OpenID provider "acme". Server flow in Chromium through the official SDK (popup, postMessage to an
// allowed origin) and by #token= redirects on both route families, with PKCE S256 seen by the
// provider; the SDK's token then reads a per-user table; client flow by posting the provider's ID
// token to /login/acme and /.auth/login/acme.
func TestLoginWithRealOpenIDProvider(t *testing.T) {
	alone(t)
	needTools(t, true)
	const clientID, secret = "gatehouse-e2e", "e2e-client-secret-0123456789"
	front := startTLSFront(t)
	pub := front.srv.URL
	nativeRedirect := pub + "/app/oauth2redirect" // where a native SDK would receive the code; never followed
	op := startOP(t, clientID, secret, []string{pub + "/login/acme", pub + "/.auth/login/acme/callback", nativeRedirect})
	app := writeApp(t, map[string]string{
		"datamodel.json": `{"tables":[{"name":"notes","permissions":{"read":"user","insert":"user"},"perUser":true}]}`,
	})
	g := startGatehouse(t, GatehouseOptions{App: app, Env: map[string]string{
		"GATEHOUSE_PUBLIC_URL":              pub,
		"MS_CrossDomainWhitelist":           `[{"host":"127.0.0.1"}]`,
		"GATEHOUSE_OIDC_PROVIDERS":          "acme",
		"GATEHOUSE_OIDC_ACME_ISSUER":        op.Issuer,
		"GATEHOUSE_OIDC_ACME_CLIENT_ID":     clientID,
		"GATEHOUSE_OIDC_ACME_CLIENT_SECRET": secret,
	}})
	target, _ := url.Parse(g.URL)
	front.target.Store(target)
	page := servePage(t, nil)

	var res struct {
		SDK struct {
			UserID, Token, Error string
			Rows                 []string
		} `json:"sdk"`
		V1 string `json:"redirect-v1"`
		V2 string `json:"redirect-v2"`
	}
	runBrowser(t, "login", page.URL(), g.URL, map[string]any{"user": "alice", "secureURL": pub, "steps": []string{"sdk", "redirect-v1", "redirect-v2"}}, &res)
	if res.SDK.Error != "" || res.SDK.UserID != "acme:alice" || res.SDK.Token == "" {
		t.Fatalf("SDK login: %+v", res.SDK)
	}
	if len(res.SDK.Rows) != 1 || res.SDK.Rows[0] != "hello from acme:alice" {
		t.Fatalf("per-user table read: %q", res.SDK.Rows)
	}
	for name, c := range map[string]struct{ got, done string }{"v1": {res.V1, pub + "/login/done#token="}, "v2": {res.V2, pub + "/.auth/login/done#token="}} {
		if !strings.HasPrefix(c.got, c.done) {
			t.Fatalf("%s redirect completion: %q", name, c.got)
		}
		payload, err := url.PathUnescape(strings.TrimPrefix(c.got, c.done))
		if err != nil || !strings.HasPrefix(payload, `{"user":{"userId":"acme:alice"},"authenticationToken":"`) {
			t.Fatalf("%s payload %q %v", name, payload, err)
		}
	}
	auths := op.authorizations()
	if len(auths) < 3 {
		t.Fatalf("the provider saw %d authorization requests", len(auths))
	}
	for _, a := range auths {
		if a.Get("code_challenge_method") != "S256" || len(a.Get("code_challenge")) != 43 || a.Get("nonce") == "" || a.Get("state") == "" {
			t.Fatalf("authorization request without PKCE S256/nonce/state: %v", a)
		}
	}

	// Client flow: an ID token from the same provider, posted to both route families.
	idTok := codeFlow(t, op, clientID, secret, nativeRedirect, "bob")
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test front
	for _, path := range []string{"/login/acme", "/.auth/login/acme"} {
		resp, err := client.Post(pub+path, "application/json", strings.NewReader(`{"id_token":"`+idTok+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), `{"user":{"userId":"acme:bob"},"authenticationToken":"`) {
			t.Fatalf("client flow %s: %d %s", path, resp.StatusCode, b)
		}
	}
}
