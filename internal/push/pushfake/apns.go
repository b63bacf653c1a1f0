package pushfake

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/push/platform"
)

// APNsNotification is one notification the APNs fake accepted.
type APNsNotification struct {
	Token      string
	ID         string // apns-id as sent (the fake makes one when absent)
	PushType   string
	Priority   string
	Topic      string
	Expiration string
	CollapseID string
	Payload    []byte
	// Auth is "token" (with KeyID) or "certificate".
	Auth  string
	KeyID string
	// IssuedAt is the provider token's iat (token authentication).
	IssuedAt int64
}

// APNs is a fake of Apple's HTTP/2 provider API. It serves only HTTP/2 over TLS, verifies ES256
// provider tokens (signature with the team's public key, kid, iss, iat younger than an hour, at most
// one new token per 20 minutes) or a client certificate it issued, checks the request's headers and
// topic like APNs, and answers with APNs' status codes and {"reason": …} bodies.
type APNs struct {
	control[APNsNotification]
	srv *httptest.Server

	// TeamID, KeyID and KeyPEM are the token credentials APNs accepts (KeyPEM: the .p8 file).
	TeamID, KeyID string
	KeyPEM        []byte
	// Topic is the app's bundle id; the push types' suffixed topics (.voip, ...) are accepted too.
	Topic string

	pub          *ecdsa.PublicKey
	ca           *x509.Certificate
	caKey        *ecdsa.PrivateKey
	lastIat      map[string]int64 // per connection: APNs counts token updates on a connection
	unregistered map[string]time.Time
}

// NewAPNs starts a fake APNs for the app topic (bundle id) with fresh token credentials.
func NewAPNs(t testing.TB, topic string) *APNs {
	t.Helper()
	key, keyPEM := NewP256Key()
	f := &APNs{control: newControl[APNsNotification](), TeamID: "TEAM123456", KeyID: "KEY1234567", KeyPEM: keyPEM,
		Topic: topic, pub: &key.PublicKey, unregistered: map[string]time.Time{}, lastIat: map[string]int64{}}
	f.ca, f.caKey = newCA("Fake APNs client CA")
	pool := x509.NewCertPool()
	pool.AddCert(f.ca)
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut short by closing clients
	f.srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's base URL.
func (f *APNs) URL() string { return f.srv.URL }

// Options points a platform at the fake.
func (f *APNs) Options() platform.Options {
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	return platform.Options{Endpoint: f.srv.URL, RootCAs: pool}
}

// TokenConfig is an APNsConfig with the fake's token credentials.
func (f *APNs) TokenConfig() platform.APNsConfig {
	return platform.APNsConfig{AuthKey: f.KeyPEM, KeyID: f.KeyID, TeamID: f.TeamID, Topic: f.Topic}
}

// ClientCertificate issues a client certificate the fake accepts (as Apple issues push certificates).
func (f *APNs) ClientCertificate() *tls.Certificate {
	key, _ := NewP256Key()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "Apple Push Services: " + f.Topic, OrganizationalUnit: []string{f.TeamID}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, &key.PublicKey, f.caKey)
	if err != nil {
		panic(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// Unregister makes APNs answer 410 Unregistered for token, inactive since at.
func (f *APNs) Unregister(token string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unregistered[strings.ToLower(token)] = at
}

var apnsTopicSuffixes = map[string]string{"voip": ".voip", "complication": ".complication", "fileprovider": ".pushkit.fileprovider",
	"location": ".location-query", "liveactivity": ".push-type.liveactivity", "pushtotalk": ".voip-ptt",
	"widgets": ".push-type.widgets", "controls": ".push-type.controls", "alert": "", "background": "", "mdm": ""}

func apnsFail(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("apns-id", uuid.NewString())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"reason": reason})
}

func (f *APNs) serve(w http.ResponseWriter, r *http.Request) {
	f.count()
	if r.ProtoMajor != 2 {
		// APNs speaks HTTP/2 only; an HTTP/1.1 client gets no APNs answer at all.
		http.Error(w, "HTTP/2 required", http.StatusHTTPVersionNotSupported)
		return
	}
	if r.Method != http.MethodPost {
		apnsFail(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok {
		apnsFail(w, http.StatusNotFound, "BadPath")
		return
	}
	n := APNsNotification{Token: token}
	// Authentication first, as APNs does.
	if auth := r.Header.Get("Authorization"); auth != "" {
		reason := f.checkToken(auth, r.RemoteAddr, &n)
		if reason != "" {
			status := http.StatusForbidden
			if reason == "TooManyProviderTokenUpdates" {
				status = http.StatusTooManyRequests
			}
			apnsFail(w, status, reason)
			return
		}
		n.Auth = "token"
	} else if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		n.Auth = "certificate"
	} else {
		apnsFail(w, http.StatusForbidden, "MissingProviderToken")
		return
	}
	if token == "" {
		apnsFail(w, http.StatusBadRequest, "MissingDeviceToken")
		return
	}
	if b, err := hex.DecodeString(token); err != nil || len(b) < 32 {
		apnsFail(w, http.StatusBadRequest, "BadDeviceToken")
		return
	}
	h := r.Header
	for _, name := range []string{"apns-id", "apns-topic", "apns-push-type", "apns-priority", "apns-expiration", "apns-collapse-id", "Authorization"} {
		if len(h.Values(name)) > 1 {
			apnsFail(w, http.StatusBadRequest, "DuplicateHeaders")
			return
		}
	}
	n.ID = h.Get("apns-id")
	if n.ID != "" {
		if _, err := uuid.Parse(n.ID); err != nil || len(n.ID) != 36 {
			apnsFail(w, http.StatusBadRequest, "BadMessageId")
			return
		}
	} else {
		n.ID = uuid.NewString()
	}
	n.PushType = h.Get("apns-push-type")
	suffix, known := apnsTopicSuffixes[n.PushType]
	if n.PushType != "" && !known {
		apnsFail(w, http.StatusBadRequest, "InvalidPushType")
		return
	}
	n.Topic = h.Get("apns-topic")
	switch {
	case n.Topic == "" && n.Auth == "token":
		apnsFail(w, http.StatusBadRequest, "MissingTopic")
		return
	case n.Topic == "":
		n.Topic = f.Topic + suffix // a certificate's own topic
	case n.Topic != f.Topic+suffix && !(n.PushType == "" && n.Topic == f.Topic):
		if strings.HasPrefix(n.Topic, f.Topic) {
			apnsFail(w, http.StatusBadRequest, "DeviceTokenNotForTopic")
		} else {
			apnsFail(w, http.StatusBadRequest, "TopicDisallowed")
		}
		return
	}
	n.Priority = h.Get("apns-priority")
	switch n.Priority {
	case "", "10", "5", "1":
	default:
		apnsFail(w, http.StatusBadRequest, "BadPriority")
		return
	}
	n.Expiration = h.Get("apns-expiration")
	if n.Expiration != "" {
		if _, err := strconv.ParseUint(n.Expiration, 10, 64); err != nil {
			apnsFail(w, http.StatusBadRequest, "BadExpirationDate")
			return
		}
	}
	n.CollapseID = h.Get("apns-collapse-id")
	if len(n.CollapseID) > 64 {
		apnsFail(w, http.StatusBadRequest, "BadCollapseId")
		return
	}
	limit := platform.APNsMaxPayload
	if n.PushType == "voip" {
		limit = platform.APNsMaxVoIPPayload
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if len(body) == 0 {
		apnsFail(w, http.StatusBadRequest, "PayloadEmpty")
		return
	}
	if len(body) > limit {
		apnsFail(w, http.StatusRequestEntityTooLarge, "PayloadTooLarge")
		return
	}
	n.Payload = body
	if fail := f.scripted(); fail != nil {
		setRetryAfter(w, fail.RetryAfter)
		apnsFail(w, fail.Status, fail.Reason)
		return
	}
	f.mu.Lock()
	at, gone := f.unregistered[strings.ToLower(token)]
	f.mu.Unlock()
	if gone {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("apns-id", n.ID)
		w.WriteHeader(http.StatusGone)
		_ = json.NewEncoder(w).Encode(map[string]any{"reason": "Unregistered", "timestamp": at.UnixMilli()})
		return
	}
	f.record(n)
	w.Header().Set("apns-id", n.ID)
	w.WriteHeader(http.StatusOK)
}

// checkToken verifies an ES256 provider token as APNs does and returns the failure reason ("" when
// it is good).
func (f *APNs) checkToken(auth, conn string, n *APNsNotification) string {
	raw, ok := strings.CutPrefix(auth, "bearer ")
	if !ok {
		return "InvalidProviderToken"
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return "InvalidProviderToken"
	}
	if tok.Headers[0].KeyID != f.KeyID {
		return "InvalidProviderToken"
	}
	var claims struct {
		Iss string `json:"iss"`
		Iat int64  `json:"iat"`
	}
	if err := tok.Claims(f.pub, &claims); err != nil {
		return "InvalidProviderToken"
	}
	if claims.Iss != f.TeamID || claims.Iat == 0 {
		return "InvalidProviderToken"
	}
	now := f.clock().Unix()
	if now-claims.Iat > 3600 {
		return "ExpiredProviderToken"
	}
	if claims.Iat > now+60 {
		return "InvalidProviderToken"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if last := f.lastIat[conn]; claims.Iat > last {
		if last != 0 && claims.Iat-last < 20*60 {
			return "TooManyProviderTokenUpdates"
		}
		f.lastIat[conn] = claims.Iat
	}
	n.KeyID, n.IssuedAt = f.KeyID, claims.Iat
	return ""
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n
}

func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := NewP256Key()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}
