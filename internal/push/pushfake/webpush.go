package pushfake

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/push/platform"
)

// WebPushMessage is one message the Web Push receiver accepted and decrypted.
type WebPushMessage struct {
	// Subscription is the name given to Subscribe.
	Subscription string
	// Plaintext is the decrypted payload.
	Plaintext []byte
	TTL       int
	Urgency   string
	Topic     string
	// VAPID's token: subject, audience and expiry, and the key it was signed with (base64url).
	Subject  string
	Audience string
	Expiry   time.Time
	Key      string
	// RecordSize is the aes128gcm header's rs.
	RecordSize uint32
	// Body and Header are the request as received (the encrypted body).
	Body   []byte
	Header http.Header
}

// webSub is a browser's subscription: the user agent's keys.
type webSub struct {
	priv      *ecdh.PrivateKey
	auth      []byte
	serverKey []byte // applicationServerKey the subscription is bound to (nil: any)
	gone      bool
}

// WebPush is a fake push service (RFC 8030) as a browser's vendor runs it. Subscribe makes a
// subscription with its own P-256 key pair and auth secret; a message to its endpoint must carry a
// VAPID Authorization (RFC 8292: ES256 JWT whose signature verifies with k, aud the endpoint's
// origin, exp in the future and at most 24 hours away, a mailto: or https: sub, k equal to the
// subscription's applicationServerKey), a TTL, a valid Urgency and Topic, Content-Encoding
// aes128gcm and at most 4096 bytes; the receiver decrypts the body with the subscription's private
// key (RFC 8291) and answers 201 Created, or 400/401/403/404/410/413 as push services do.
type WebPush struct {
	control[WebPushMessage]
	srv  *httptest.Server
	subs map[string]*webSub
}

// NewWebPush starts a fake push service.
func NewWebPush(t testing.TB) *WebPush {
	t.Helper()
	f := &WebPush{control: newControl[WebPushMessage](), subs: map[string]*webSub{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// Options trusts the fake's certificate.
func (f *WebPush) Options() platform.Options {
	return platform.Options{RootCAs: certPool(f.srv)}
}

// Host is the fake's host:port, for WebPushConfig.EndpointHosts.
func (f *WebPush) Host() string {
	u, _ := url.Parse(f.srv.URL)
	return u.Host
}

// Subscribe makes a subscription named name bound to the application server key (base64url; ""
// for none) and returns its JSON as PushSubscription.toJSON() gives it.
func (f *WebPush) Subscribe(name, applicationServerKey string) string {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	s := &webSub{priv: priv, auth: make([]byte, 16)}
	_, _ = rand.Read(s.auth)
	if applicationServerKey != "" {
		s.serverKey, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(applicationServerKey, "="))
		if err != nil {
			panic(err)
		}
	}
	f.mu.Lock()
	f.subs[name] = s
	f.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"endpoint": f.srv.URL + "/wpush/v2/" + name, "expirationTime": nil,
		"keys": map[string]string{"p256dh": base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
			"auth": base64.RawURLEncoding.EncodeToString(s.auth)}})
	return string(b)
}

// Unsubscribe makes the subscription's endpoint answer 410 Gone.
func (f *WebPush) Unsubscribe(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.subs[name]; s != nil {
		s.gone = true
	}
}

func webPushFail(w http.ResponseWriter, status int, errno int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": status, "errno": errno, "error": http.StatusText(status), "message": msg})
}

var topicRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (f *WebPush) serve(w http.ResponseWriter, r *http.Request) {
	f.count()
	name, ok := strings.CutPrefix(r.URL.Path, "/wpush/v2/")
	f.mu.Lock()
	sub := f.subs[name]
	f.mu.Unlock()
	if !ok || sub == nil {
		webPushFail(w, http.StatusNotFound, 102, "Request did not validate invalid token")
		return
	}
	if r.Method != http.MethodPost {
		webPushFail(w, http.StatusMethodNotAllowed, 105, "Method not allowed")
		return
	}
	msg := WebPushMessage{Subscription: name, Urgency: r.Header.Get("Urgency"), Topic: r.Header.Get("Topic")}
	if status, reason := f.checkVAPID(r, sub, &msg); status != 0 {
		webPushFail(w, status, 109, reason)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get("TTL"))
	if err != nil || ttl < 0 {
		webPushFail(w, http.StatusBadRequest, 111, "Missing TTL header")
		return
	}
	msg.TTL = ttl
	switch msg.Urgency {
	case "", "very-low", "low", "normal", "high":
	default:
		webPushFail(w, http.StatusBadRequest, 111, "Invalid Urgency header")
		return
	}
	if msg.Topic != "" && !topicRE.MatchString(msg.Topic) {
		webPushFail(w, http.StatusBadRequest, 111, "Invalid Topic header")
		return
	}
	if r.Header.Get("Content-Encoding") != "aes128gcm" {
		webPushFail(w, http.StatusUnsupportedMediaType, 110, "Unknown Content-Encoding")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4097))
	if len(body) > 4096 {
		webPushFail(w, http.StatusRequestEntityTooLarge, 104, "Payload too large")
		return
	}
	plain, rs, err := decrypt(body, sub)
	if err != nil {
		webPushFail(w, http.StatusBadRequest, 110, "Could not decrypt: "+err.Error())
		return
	}
	msg.Plaintext, msg.RecordSize, msg.Body, msg.Header = plain, rs, body, r.Header.Clone()
	if fail := f.scripted(); fail != nil {
		setRetryAfter(w, fail.RetryAfter)
		webPushFail(w, fail.Status, 999, fail.Reason)
		return
	}
	f.mu.Lock()
	gone := sub.gone
	f.mu.Unlock()
	if gone {
		webPushFail(w, http.StatusGone, 106, "Subscription has expired")
		return
	}
	f.record(msg)
	w.Header().Set("Location", f.srv.URL+"/m/"+randomString(16))
	w.Header().Set("TTL", strconv.Itoa(ttl))
	w.WriteHeader(http.StatusCreated)
}

// checkVAPID verifies the Authorization header (RFC 8292 §3) and returns a failure status and reason.
func (f *WebPush) checkVAPID(r *http.Request, sub *webSub, msg *WebPushMessage) (int, string) {
	params, ok := strings.CutPrefix(r.Header.Get("Authorization"), "vapid ")
	if !ok {
		return http.StatusUnauthorized, "Missing VAPID Authorization"
	}
	var t, k string
	for _, p := range strings.Split(params, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch name {
		case "t":
			t = val
		case "k":
			k = val
		}
	}
	keyBytes, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		return http.StatusUnauthorized, "Invalid VAPID public key"
	}
	pub, err := ecdh.P256().NewPublicKey(keyBytes)
	if err != nil {
		return http.StatusUnauthorized, "Invalid VAPID public key"
	}
	if sub.serverKey != nil && !bytes.Equal(sub.serverKey, keyBytes) {
		return http.StatusForbidden, "VAPID key does not match the subscription's applicationServerKey"
	}
	ecPub, err := ecdsaPublic(pub)
	if err != nil {
		return http.StatusUnauthorized, "Invalid VAPID public key"
	}
	tok, err := jwt.ParseSigned(t, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return http.StatusUnauthorized, "Invalid VAPID token"
	}
	var claims jwt.Claims
	if err := tok.Claims(ecPub, &claims); err != nil {
		return http.StatusUnauthorized, "VAPID signature does not verify"
	}
	origin := "https://" + r.Host
	now := f.clock()
	switch {
	case !claims.Audience.Contains(origin) || len(claims.Audience) != 1:
		return http.StatusUnauthorized, "VAPID aud is not the endpoint's origin"
	case claims.Expiry == nil || !claims.Expiry.Time().After(now):
		return http.StatusUnauthorized, "VAPID token expired"
	case claims.Expiry.Time().After(now.Add(24 * time.Hour)):
		return http.StatusUnauthorized, "VAPID exp is more than 24 hours away"
	case !strings.HasPrefix(claims.Subject, "mailto:") && !strings.HasPrefix(claims.Subject, "https:"):
		return http.StatusUnauthorized, "VAPID sub must be a mailto: or https: URI"
	}
	msg.Subject, msg.Audience, msg.Expiry, msg.Key = claims.Subject, origin, claims.Expiry.Time(), k
	return 0, ""
}

func ecdsaPublic(pub *ecdh.PublicKey) (*ecdsa.PublicKey, error) {
	// Round-trip through PKIX: crypto/ecdh and crypto/ecdsa share it.
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ec, nil
}

// decrypt opens an aes128gcm body (RFC 8188 framing, RFC 8291 keys) with the subscription's keys.
func decrypt(body []byte, sub *webSub) ([]byte, uint32, error) {
	if len(body) < 21 {
		return nil, 0, errors.New("truncated header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, 0, errors.New("the key id must be the sender's 65-byte public key")
	}
	senderKey, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, 0, errors.New("the sender key is not a P-256 point")
	}
	records := body[21+idlen:]
	if rs < 18 || len(records) > int(rs) || len(records) < 17 {
		return nil, 0, errors.New("exactly one record is expected")
	}
	secret, err := sub.priv.ECDH(senderKey)
	if err != nil {
		return nil, 0, err
	}
	// RFC 8291 §3.3-3.4.
	keyInfo := append(append([]byte("WebPush: info\x00"), sub.priv.PublicKey().Bytes()...), senderKey.Bytes()...)
	ikm, err := hkdf.Key(sha256.New, secret, sub.auth, string(keyInfo), 32)
	if err != nil {
		return nil, 0, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, 0, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, 0, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, 0, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, 0, err
	}
	plain, err := gcm.Open(nil, nonce, records, nil)
	if err != nil {
		return nil, 0, errors.New("authentication failed")
	}
	// The last record's padding: a 0x02 delimiter then zeros (RFC 8188 §2).
	end := len(plain) - 1
	for end >= 0 && plain[end] == 0 {
		end--
	}
	if end < 0 || plain[end] != 2 {
		return nil, 0, errors.New("bad padding delimiter")
	}
	return plain[:end], rs, nil
}
