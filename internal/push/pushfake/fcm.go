package pushfake

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/push/platform"
)

// FCMMessage is one message the FCM fake accepted.
type FCMMessage struct {
	Token        string
	Data         map[string]string
	Notification *FCMNotification
	Android      *FCMAndroid
	// APNs is the message's apns block as sent (nil when absent).
	APNs         map[string]any
	ValidateOnly bool
	// Raw is the request body.
	Raw []byte
}

// FCMNotification is a v1 message's notification.
type FCMNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
}

// FCMAndroid is a v1 message's android block.
type FCMAndroid struct {
	CollapseKey           string            `json:"collapse_key,omitempty"`
	Priority              string            `json:"priority,omitempty"`
	TTL                   string            `json:"ttl,omitempty"`
	RestrictedPackageName string            `json:"restricted_package_name,omitempty"`
	Data                  map[string]string `json:"data,omitempty"`
	Notification          map[string]any    `json:"notification,omitempty"`
	FCMOptions            map[string]any    `json:"fcm_options,omitempty"`
	DirectBootOK          bool              `json:"direct_boot_ok,omitempty"`
}

type fcmV1Message struct {
	Name         string            `json:"name,omitempty"`
	Token        string            `json:"token,omitempty"`
	Topic        string            `json:"topic,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Notification *FCMNotification  `json:"notification,omitempty"`
	Android      *FCMAndroid       `json:"android,omitempty"`
	APNs         map[string]any    `json:"apns,omitempty"`
	Webpush      map[string]any    `json:"webpush,omitempty"`
	FCMOptions   map[string]any    `json:"fcm_options,omitempty"`
}

// FCM is a fake of FCM HTTP v1 and of Google's OAuth2 token endpoint. The token endpoint verifies
// the service account's RS256 JWT assertion (key id, signature, iss, scope, aud, iat/exp) and issues
// access tokens for an hour; the send endpoint checks the bearer token, the project, and the message
// as the v1 API does (unknown fields, one target, string data values, reserved keys, TTL, priority,
// size), and answers with Google's error bodies ({"error": {"code", "message", "status",
// "details": [FcmError]}}).
type FCM struct {
	control[FCMMessage]
	srv *httptest.Server

	Project     string
	ClientEmail string
	KeyID       string
	key         *rsa.PrivateKey

	tokens       map[string]time.Time // access token → expiry
	unregistered map[string]bool
	tokenCalls   int
	seq          int
}

// NewFCM starts a fake FCM for project with a fresh service account.
func NewFCM(t testing.TB, project string) *FCM {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 20)
	_, _ = rand.Read(id)
	f := &FCM{control: newControl[FCMMessage](), Project: project, ClientEmail: "gatehouse-push@" + project + ".iam.gserviceaccount.com",
		KeyID: hex.EncodeToString(id), key: key, tokens: map[string]time.Time{}, unregistered: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", f.serveToken)
	mux.HandleFunc("/v1/", f.serveSend)
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.EnableHTTP2 = true
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// ServiceAccountJSON is the service account's key file. Its token_uri is Google's: point the
// platform at the fake with Options (TokenURL).
func (f *FCM) ServiceAccountJSON() []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(f.key)
	b, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": f.Project, "private_key_id": f.KeyID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": f.ClientEmail, "client_id": "101234567890123456789",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
	}, "", "  ")
	return b
}

// Options points a platform at the fake (send endpoint, token endpoint, trust).
func (f *FCM) Options() platform.Options {
	return platform.Options{Endpoint: f.srv.URL, TokenURL: f.srv.URL + "/token", RootCAs: certPool(f.srv)}
}

// TokenCalls is how many access tokens the token endpoint issued.
func (f *FCM) TokenCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenCalls
}

// RevokeTokens makes every access token issued so far invalid (401 UNAUTHENTICATED).
func (f *FCM) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

// Unregister makes FCM answer 404 UNREGISTERED for token.
func (f *FCM) Unregister(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unregistered[token] = true
}

func oauthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (f *FCM) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		oauthError(w, "invalid_request", "Bad Request")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", "Bad Request")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, "unsupported_grant_type", "Invalid grant_type: "+r.PostForm.Get("grant_type"))
		return
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("assertion"), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(tok.Headers) != 1 || tok.Headers[0].KeyID != f.KeyID {
		oauthError(w, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	var claims struct {
		jwt.Claims
		Scope string `json:"scope"`
	}
	if err := tok.Claims(&f.key.PublicKey, &claims); err != nil {
		oauthError(w, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	now := f.clock()
	if claims.Issuer != f.ClientEmail {
		oauthError(w, "invalid_grant", "Invalid grant: account not found")
		return
	}
	if !claims.Audience.Contains(f.srv.URL + "/token") {
		oauthError(w, "invalid_grant", "Invalid JWT: Failed audience check.")
		return
	}
	if claims.IssuedAt == nil || claims.Expiry == nil || claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > time.Hour ||
		claims.IssuedAt.Time().After(now.Add(time.Minute)) || !claims.Expiry.Time().After(now) {
		oauthError(w, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
		return
	}
	scoped := false
	for _, s := range strings.Fields(claims.Scope) {
		scoped = scoped || s == platform.FCMScope
	}
	if !scoped {
		oauthError(w, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	access := "ya29." + randomString(48)
	f.mu.Lock()
	f.tokens[access] = now.Add(time.Hour)
	f.tokenCalls++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": access, "expires_in": 3599, "token_type": "Bearer"})
}

// googleStatus is the canonical status name of an HTTP status.
func googleStatus(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 503:
		return "UNAVAILABLE"
	default:
		return "INTERNAL"
	}
}

func fcmFail(w http.ResponseWriter, code int, errorCode, msg string) {
	e := map[string]any{"code": code, "message": msg, "status": googleStatus(code)}
	if errorCode != "" {
		e["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": errorCode}}
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

var (
	fcmTTLRE   = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,9})?s$`)
	fcmTokenRE = regexp.MustCompile(`^[A-Za-z0-9_:.\-]{32,}$`)
)

func (f *FCM) serveSend(w http.ResponseWriter, r *http.Request) {
	f.count()
	project, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/projects/"), "/messages:send")
	if !ok || r.Method != http.MethodPost {
		fcmFail(w, http.StatusNotFound, "", "Not Found")
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	exp, known := f.tokens[bearer]
	f.mu.Unlock()
	if !known || !f.clock().Before(exp) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
		fcmFail(w, http.StatusUnauthorized, "", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(project), []byte(f.Project)) != 1 {
		fcmFail(w, http.StatusForbidden, "", "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/"+project+"' (or it may not exist).")
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req struct {
		ValidateOnly bool          `json:"validate_only"`
		Message      *fcmV1Message `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Message == nil {
		fcmFail(w, http.StatusBadRequest, "", fmt.Sprintf("Invalid JSON payload received. %v", err))
		return
	}
	m := req.Message
	targets := 0
	for _, s := range []string{m.Token, m.Topic, m.Condition} {
		if s != "" {
			targets++
		}
	}
	if targets != 1 {
		fcmFail(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Exactly one of message.token, message.topic or message.condition must be specified.")
		return
	}
	if m.Token != "" && (!fcmTokenRE.MatchString(m.Token) || len(m.Token) > 4096) {
		fcmFail(w, http.StatusBadRequest, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")
		return
	}
	for k := range m.Data {
		if k == "from" || k == "notification" || k == "message_type" || strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.") {
			fcmFail(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid data payload key: "+k)
			return
		}
	}
	if a := m.Android; a != nil {
		if a.TTL != "" {
			secs, _ := strconv.ParseFloat(strings.TrimSuffix(a.TTL, "s"), 64)
			if !fcmTTLRE.MatchString(a.TTL) || secs > 2419200 {
				fcmFail(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'")
				return
			}
		}
		if a.Priority != "" && a.Priority != "NORMAL" && a.Priority != "HIGH" {
			fcmFail(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid value at 'message.android.priority'")
			return
		}
	}
	size := 0 // FCM counts the data's keys and values and the notification's text
	for k, v := range m.Data {
		size += len(k) + len(v)
	}
	if n := m.Notification; n != nil {
		size += len(n.Title) + len(n.Body) + len(n.Image)
	}
	if size > 4096 {
		fcmFail(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Message is too big")
		return
	}
	if fail := f.scripted(); fail != nil {
		setRetryAfter(w, fail.RetryAfter)
		fcmFail(w, fail.Status, fail.Reason, "scripted failure")
		return
	}
	f.mu.Lock()
	gone := f.unregistered[m.Token]
	f.seq++
	seq := f.seq
	f.mu.Unlock()
	if gone {
		fcmFail(w, http.StatusNotFound, "UNREGISTERED", "Requested entity was not found.")
		return
	}
	f.record(FCMMessage{Token: m.Token, Data: m.Data, Notification: m.Notification, Android: m.Android, APNs: m.APNs,
		ValidateOnly: req.ValidateOnly, Raw: raw})
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": fmt.Sprintf("projects/%s/messages/0:%d%%%s", f.Project, seq, randomString(8))})
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func certPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}
