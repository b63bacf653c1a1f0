package account_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// totpAt computes the authenticator app's code, independently of the package's implementation.
func totpAt(t *testing.T, secretB32 string, now time.Time) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secretB32)
	if err != nil {
		t.Fatal(err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(now.Unix()/30))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	s := m.Sum(nil)
	o := s[19] & 15
	return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(s[o:])&0x7fffffff)%1000000)
}

func (e *env) amr(tok string) []string {
	e.t.Helper()
	c, err := e.auth.Identify(auth.Credentials{Token: tok, HasToken: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Claims.AMR
}

// signUp registers and signs in an account and returns its token.
func (e *env) signUp(email, pw string) string {
	e.t.Helper()
	if r := e.do("POST", "/login/custom/register", js(map[string]string{"email": email, "password": pw})); r.status != http.StatusAccepted {
		e.t.Fatalf("register: %d %s", r.status, r.body)
	}
	e.smtp.Wait(e.t) // the verification email
	r := e.do("POST", "/login/custom", js(map[string]string{"email": email, "password": pw}))
	if r.status != 200 {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return r.json["authenticationToken"].(string)
}

func TestTOTPSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		const email, pw = "tess@example.com", "correct horse battery"
		tok := e.signUp(email, pw)
		if got := e.amr(tok); !slices.Equal(got, []string{"pwd"}) {
			t.Fatalf("password token amr %v", got)
		}
		authz := []string{"X-ZUMO-AUTH", tok}

		// Enrol: secret, otpauth URI and a QR code; not active before a code confirms it.
		r := e.do("POST", "/.auth/login/custom/mfa/totp", "", authz...)
		if r.status != 200 || !strings.HasPrefix(r.json["uri"].(string), "otpauth://totp/TestApp:tess@example.com?") ||
			!strings.HasPrefix(r.json["qrCode"].(string), "data:image/png;base64,iVBOR") || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("enrol: %d %s", r.status, r.body)
		}
		secret := r.json["secret"].(string)
		if r := e.do("POST", "/login/custom", js(map[string]string{"email": email, "password": pw})); r.json["authenticationToken"] == nil {
			t.Fatalf("an unconfirmed enrolment already asks for a second factor: %s", r.body)
		}
		if r := e.do("POST", "/login/custom/mfa/totp/confirm", js(map[string]string{"code": "000000"}), authz...); r.status != 401 || !strings.Contains(r.body, "not valid") {
			t.Fatalf("wrong confirmation code: %d %s", r.status, r.body)
		}
		code := totpAt(t, secret, e.clock.Now())
		r = e.do("POST", "/login/custom/mfa/totp/confirm", js(map[string]string{"code": code}), authz...)
		if r.status != 200 || len(r.json["recoveryCodes"].([]any)) != 10 {
			t.Fatalf("confirm: %d %s", r.status, r.body)
		}
		recovery := r.json["recoveryCodes"].([]any)
		if r := e.do("POST", "/login/custom/mfa/totp", "", authz...); r.status != http.StatusForbidden {
			t.Fatalf("re-enrolment with a password-only token: %d %s", r.status, r.body)
		}

		// Two-step login: the password answers a challenge, not a token.
		login := func() string {
			t.Helper()
			r := e.do("POST", "/login/custom", js(map[string]string{"email": email, "password": pw}))
			if r.status != 200 || r.json["mfaRequired"] != true || r.json["authenticationToken"] != nil || !slices.Contains(r.json["methods"].([]any), any("totp")) {
				t.Fatalf("login with a second factor: %d %s", r.status, r.body)
			}
			return r.json["mfaToken"].(string)
		}
		mfa := login()
		// The confirmation's code (same step) is refused as reused; so is any earlier step.
		if r := e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": mfa, "method": "totp", "code": code})); r.status != 401 || !strings.Contains(r.body, "already used") {
			t.Fatalf("reused code: %d %s", r.status, r.body)
		}
		e.clock.Advance(30 * time.Second)
		code = totpAt(t, secret, e.clock.Now())
		r = e.do("POST", "/.auth/login/custom/mfa", js(map[string]string{"mfaToken": mfa, "method": "totp", "code": code[:3] + " " + code[3:]}))
		if r.status != 200 {
			t.Fatalf("second factor: %d %s", r.status, r.body)
		}
		mfaTok := r.json["authenticationToken"].(string)
		if got := e.amr(mfaTok); !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("amr %v", got)
		}
		// The challenge is single use.
		e.clock.Advance(30 * time.Second)
		if r := e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": mfa, "method": "totp", "code": totpAt(t, secret, e.clock.Now())})); r.status != 401 || !strings.Contains(r.body, "challenge") {
			t.Fatalf("spent challenge: %d %s", r.status, r.body)
		}
		// The code just used, with a fresh challenge, within its window: refused.
		if r := e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": login(), "method": "totp", "code": code})); r.status != 401 || !strings.Contains(r.body, "already used") {
			t.Fatalf("code reused within its window: %d %s", r.status, r.body)
		}

		// Recovery codes: single use, typed in any case.
		rc := strings.ToUpper(recovery[0].(string))
		r = e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": login(), "method": "recovery", "code": rc}))
		if r.status != 200 || !slices.Equal(e.amr(r.json["authenticationToken"].(string)), []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("recovery code: %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": login(), "method": "recovery", "code": rc})); r.status != 401 || !strings.Contains(r.body, "recovery code was already used") {
			t.Fatalf("reused recovery code: %d %s", r.status, r.body)
		}
		st := e.do("GET", "/login/custom/mfa", "", "X-ZUMO-AUTH", mfaTok)
		if st.status != 200 || st.json["totp"] != true || st.json["recoveryCodesLeft"] != float64(9) {
			t.Fatalf("status: %d %s", st.status, st.body)
		}
		// Regenerating needs a multi-factor token; the old codes stop working.
		if r := e.do("POST", "/login/custom/mfa/recovery", "", authz...); r.status != http.StatusForbidden {
			t.Fatalf("regenerate with a password-only token: %d %s", r.status, r.body)
		}
		r = e.do("POST", "/login/custom/mfa/recovery", "", "X-ZUMO-AUTH", mfaTok)
		if r.status != 200 || len(r.json["recoveryCodes"].([]any)) != 10 {
			t.Fatalf("regenerate: %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": login(), "method": "recovery", "code": recovery[1].(string)})); r.status != 401 {
			t.Fatalf("old recovery code after regeneration: %d %s", r.status, r.body)
		}

		// A stale challenge is refused.
		stale := login()
		e.clock.Advance(6 * time.Minute)
		if r := e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": stale, "method": "totp", "code": totpAt(t, secret, e.clock.Now())})); r.status != 401 || !strings.Contains(r.body, "expired") {
			t.Fatalf("stale challenge: %d %s", r.status, r.body)
		}

		// Bad input is counted: a burst of wrong codes ends in 429.
		mfa = login()
		var last resp
		for range 8 {
			last = e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": mfa, "method": "totp", "code": "999999"}))
			if last.status == http.StatusTooManyRequests {
				break
			}
		}
		if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
			t.Fatalf("wrong codes never throttled: %d %s", last.status, last.body)
		}

		// Removing the app needs a multi-factor token; then sign-in is one step again.
		if r := e.do("DELETE", "/login/custom/mfa/totp", "", authz...); r.status != http.StatusForbidden {
			t.Fatalf("remove with a password-only token: %d %s", r.status, r.body)
		}
		if r := e.do("DELETE", "/login/custom/mfa/totp", "", "X-ZUMO-AUTH", mfaTok); r.status != http.StatusNoContent {
			t.Fatalf("remove: %d %s", r.status, r.body)
		}
		e.clock.Advance(time.Hour)
		if r := e.do("POST", "/login/custom", js(map[string]string{"email": email, "password": pw})); r.json["authenticationToken"] == nil {
			t.Fatalf("login after removal: %d %s", r.status, r.body)
		}
	})
}

var codeRe = regexp.MustCompile(`(?m)^\s+(\d{6})$`)

func TestEmailSignIn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		const email = "eve@example.com"
		e.signUp(email, "correct horse battery")

		start := func(addr string) (resp, string) {
			t.Helper()
			r := e.do("POST", "/login/custom/email", js(map[string]string{"email": addr}))
			var cookie string
			for _, c := range (&http.Response{Header: r.header}).Cookies() {
				if c.Name == "gatehouse_nonce" {
					cookie = c.Value
					if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
						t.Fatalf("cookie %+v", c)
					}
				}
			}
			if r.status != http.StatusAccepted || cookie == "" || r.json["requestId"] != cookie {
				t.Fatalf("start: %d %s", r.status, r.body)
			}
			return r, cookie
		}
		// No enumeration: an unknown address gets the same answer.
		unknown, _ := start("nobody@example.com")
		known, nonce := start(email)
		if unknown.status != known.status || unknown.json["message"] != known.json["message"] || len(unknown.json) != len(known.json) {
			t.Fatalf("answers differ: %s vs %s", unknown.body, known.body)
		}
		m := e.smtp.Wait(t)
		if m.To[0] != email {
			t.Fatalf("mail to %v (the unknown address got one?)", m.To)
		}
		l := link(t, m)
		tok := tokenOf(t, l)
		cm := codeRe.FindStringSubmatch(m.Text)
		if cm == nil {
			t.Fatalf("no code in %s", m.Text)
		}
		// The link's GET is a form: it spends nothing.
		if r := e.do("GET", strings.TrimPrefix(l, e.ts.URL), ""); r.status != 200 || !strings.Contains(r.body, `name="token"`) {
			t.Fatalf("link page: %d %s", r.status, r.body)
		}
		// Opened in another browser (no nonce, or another one): refused.
		if r := e.do("POST", "/login/custom/email/confirm", js(map[string]string{"token": tok})); r.status != 401 || !strings.Contains(r.body, "another browser") {
			t.Fatalf("no nonce: %d %s", r.status, r.body)
		}
		other := strings.Repeat("A", 43)
		if r := e.do("POST", "/login/custom/email/confirm", js(map[string]string{"token": tok}), "Cookie", "gatehouse_nonce="+other); r.status != 401 {
			t.Fatalf("foreign nonce: %d %s", r.status, r.body)
		}
		// The browser that asked: signed in, amr otp, single use.
		r := e.do("POST", "/.auth/login/custom/email/confirm", js(map[string]string{"token": tok}), "Cookie", "gatehouse_nonce="+nonce)
		if r.status != 200 || !slices.Equal(e.amr(r.json["authenticationToken"].(string)), []string{"otp"}) {
			t.Fatalf("confirm: %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/login/custom/email/confirm", js(map[string]string{"code": cm[1], "requestId": nonce})); r.status != 401 {
			t.Fatalf("the code after the link: %d %s", r.status, r.body)
		}

		// The code, with the request id kept by an app; a wrong code first.
		e.clock.Advance(5 * time.Minute) // past the mail throttle's spacing
		_, nonce = start(email)
		m = e.smtp.Wait(t)
		cm = codeRe.FindStringSubmatch(m.Text)
		wrong := "000000"
		if cm[1] == wrong {
			wrong = "111111"
		}
		if r := e.do("POST", "/login/custom/email/confirm", js(map[string]string{"code": wrong, "requestId": nonce})); r.status != 401 {
			t.Fatalf("wrong code: %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/login/custom/email/confirm", js(map[string]string{"code": cm[1], "requestId": nonce})); r.status != 200 || r.json["authenticationToken"] == nil {
			t.Fatalf("code: %d %s", r.status, r.body)
		}

		// Expired.
		e.clock.Advance(5 * time.Minute)
		_, nonce = start(email)
		m = e.smtp.Wait(t)
		e.clock.Advance(11 * time.Minute)
		if r := e.do("POST", "/login/custom/email/confirm", js(map[string]string{"token": tokenOf(t, link(t, m)), "requestId": nonce})); r.status != 401 {
			t.Fatalf("expired link: %d %s", r.status, r.body)
		}
	})
}

// TestAdminResetMFA: an administrator removes every second factor of an account whose owner lost
// them; its sessions end and the next sign-in is password-only.
func TestAdminResetMFA(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		const email, pw = "lou@example.com", "correct horse battery"
		tok := e.signUp(email, pw)
		r := e.do("POST", "/login/custom/mfa/totp", "", "X-ZUMO-AUTH", tok)
		if r := e.do("POST", "/login/custom/mfa/totp/confirm", js(map[string]string{"code": totpAt(t, r.json["secret"].(string), e.clock.Now())}), "X-ZUMO-AUTH", tok); r.status != 200 {
			t.Fatalf("confirm: %d %s", r.status, r.body)
		}
		master := []string{"X-ZUMO-MASTER", masterKey}
		if r := e.do("GET", "/admin/accounts/"+email+"/mfa", "", master...); r.status != 200 || r.json["totp"] != true || r.json["recoveryCodesLeft"] != float64(10) {
			t.Fatalf("admin status: %d %s", r.status, r.body)
		}
		if r := e.do("DELETE", "/admin/accounts/"+email+"/mfa", "", "X-ZUMO-AUTH", tok); r.status != 401 {
			t.Fatalf("reset without the master key: %d %s", r.status, r.body)
		}
		e.clock.Advance(time.Second) // the revocation cut-off is after the token's iat
		if r := e.do("DELETE", "/admin/accounts/"+email+"/mfa", "", master...); r.status != http.StatusNoContent {
			t.Fatalf("reset: %d %s", r.status, r.body)
		}
		if e.tokenWorks(tok) {
			t.Fatal("sessions survive the reset")
		}
		e.clock.Advance(time.Second)
		if r := e.do("POST", "/login/custom", js(map[string]string{"email": email, "password": pw})); r.json["authenticationToken"] == nil {
			t.Fatalf("login after reset: %s", r.body)
		}
		if r := e.do("GET", "/admin/accounts/"+email+"/mfa", "", master...); r.json["totp"] != false || r.json["recoveryCodesLeft"] != float64(0) {
			t.Fatalf("after reset: %s", r.body)
		}
	})
}

// TestTOTPReplayAcrossInstances: one code sent at once to two instances sharing the database, each
// with its own challenge, signs in exactly once.
func TestTOTPReplayAcrossInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := newEnv(t, db, envOpt{})
		b := newEnv(t, db, envOpt{})
		b.clock.t = a.clock.Now()
		const email, pw = "ivy@example.com", "correct horse battery"
		tok := a.signUp(email, pw)
		r := a.do("POST", "/login/custom/mfa/totp", "", "X-ZUMO-AUTH", tok)
		secret := r.json["secret"].(string)
		if r := b.do("POST", "/login/custom/mfa/totp/confirm", js(map[string]string{"code": totpAt(t, secret, a.clock.Now())}), "X-ZUMO-AUTH", tok); r.status != 200 {
			t.Fatalf("confirm on the other instance: %d %s", r.status, r.body)
		}
		a.clock.Advance(30 * time.Second)
		b.clock.Advance(30 * time.Second)
		code := totpAt(t, secret, a.clock.Now())
		for round := range 5 {
			challenges := []string{}
			for _, e := range []*env{a, b} {
				r := e.do("POST", "/login/custom", js(map[string]string{"email": email, "password": pw}))
				challenges = append(challenges, r.json["mfaToken"].(string))
			}
			results := make(chan int, 2)
			for i, e := range []*env{a, b} {
				go func() {
					results <- e.do("POST", "/login/custom/mfa", js(map[string]string{"mfaToken": challenges[i], "method": "totp", "code": code})).status
				}()
			}
			ok := 0
			for range 2 {
				if <-results == 200 {
					ok++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[round == 0]; ok != want {
				t.Fatalf("round %d: %d instances accepted the code, want %d", round, ok, want)
			}
		}
	})
}
