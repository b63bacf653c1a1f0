package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/password"
)

// NewAdmin validates an email address and password and builds an administrator with an argon2id
// hash (the password policy of the accounts: NFKC, minimum length, maximum bytes).
func NewAdmin(ctx context.Context, h *password.Hasher, p password.Policy, email, pw string, now time.Time) (*Admin, error) {
	n, err := p.NormalizeEmail(email)
	if err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	npw, err := p.NormalizePassword(pw)
	if err != nil {
		return nil, err
	}
	hash, err := h.Hash(ctx, npw)
	if err != nil {
		return nil, err
	}
	return &Admin{ID: randomToken(12), Email: n, EmailKey: password.EmailKey(n), PasswordHash: hash, CreatedAt: now, UpdatedAt: now}, nil
}

// IssueSetupLink stores a new one-time setup token (hashed) valid for ttl and returns it, or "" when
// the install already has an administrator. serve prints the link once at start.
func IssueSetupLink(ctx context.Context, st Store, now time.Time, ttl time.Duration) (string, error) {
	n, err := st.CountAdmins(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	tok := randomToken(32)
	if err := st.PutSetupToken(ctx, hashToken(tok), now, now.Add(ttl)); err != nil {
		return "", err
	}
	return tok, nil
}

// throttle keys: the address pair and the client address, in the accounts' throttle table under
// keys of the console's own ("c…"), so console failures never lock an app user out or the reverse.
func throttleKeys(emailKey, ip string) []string {
	return account.ScopedThrottleKeys("c", emailKey, ip)
}

// preSession makes sure the sign-in form has its nonce cookie and returns the form token.
func (c *Console) preSession(w http.ResponseWriter, r *http.Request) string {
	nonce := ""
	if ck, err := r.Cookie(loginCookie); err == nil && len(ck.Value) == 43 {
		nonce = ck.Value
	} else {
		nonce = randomToken(32)
		c.setCookie(w, r, loginCookie, nonce, 3600)
	}
	return loginToken(keyset(c.o.Keys())[0], nonce)
}

// checkPreSession verifies the sign-in or setup form's token against its nonce cookie.
func (c *Console) checkPreSession(r *http.Request) bool {
	ck, err := r.Cookie(loginCookie)
	if err != nil || ck.Value == "" {
		return false
	}
	got := r.PostFormValue("_csrf")
	for _, k := range keyset(c.o.Keys()) {
		if equalString(got, loginToken(k, ck.Value)) {
			return true
		}
	}
	return false
}

type signinData struct {
	Email string
	Next  string
	Retry int
}

// safeNext keeps only a console path as the post-sign-in target (no open redirect).
func (c *Console) safeNext(next string) string {
	if next == "" || len(next) > 1000 || !strings.HasPrefix(next, c.o.Path+"/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\r\n") {
		return c.o.Path + "/data"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return c.o.Path + "/data"
	}
	return next
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		v := view{Title: "Sign in", Data: signinData{Next: r.URL.Query().Get("next")}}
		v.CSRF = c.preSession(w, r)
		c.render(w, r, http.StatusOK, "signin", v)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.render(w, r, http.StatusBadRequest, "error", view{Title: "Bad request", Problem: "The form could not be read."})
		return
	}
	email, pw, next := r.PostFormValue("email"), r.PostFormValue("password"), r.PostFormValue("next")
	again := func(status int, msg string, retry time.Duration) {
		v := view{Title: "Sign in", Problem: msg, Data: signinData{Email: email, Next: next, Retry: int(retry / time.Second)}}
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry/time.Second))))
		}
		v.CSRF = c.preSession(w, r)
		c.render(w, r, status, "signin", v)
	}
	if !c.checkPreSession(r) {
		again(http.StatusForbidden, "The sign-in form was out of date. Try again.", 0)
		return
	}
	ctx := r.Context()
	key := strings.ToLower(strings.TrimSpace(email))
	if n, err := c.o.Policy.NormalizeEmail(email); err == nil {
		key = password.EmailKey(n)
	}
	keys := throttleKeys(key, clientIP(r))
	now := c.now()
	rules := []account.Rule{c.o.Rules.Pair, c.o.Rules.IP}
	var wait time.Duration
	// Every attempt counts as a failure before the password is checked (concurrent guesses cannot slip
	// past the count); a success clears the pair key.
	err := c.o.Throttle.Throttle(ctx, keys, func(rows []account.ThrottleRow) []*account.ThrottleRow {
		for _, row := range rows {
			wait = max(wait, row.Wait(now))
		}
		if wait > 0 {
			return nil
		}
		out := make([]*account.ThrottleRow, len(rows))
		for i := range rows {
			nr := rules[i].Fail(rows[i], now)
			out[i] = &nr
		}
		return out
	})
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	if wait > 0 {
		again(http.StatusTooManyRequests, fmt.Sprintf("Too many attempts. Try again in %s.", wait.Round(time.Second)), wait)
		return
	}
	npw, perr := c.o.Policy.NormalizeLoginPassword(pw)
	a, err := c.o.Store.AdminByEmailKey(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound) || perr != nil:
		_ = c.o.Hasher.DummyVerify(ctx, npw)
		again(http.StatusUnauthorized, "The email address or password is not correct.", 0)
		return
	case err != nil:
		c.unavailable(w, r, err)
		return
	}
	res, err := c.o.Hasher.VerifyAndUpgrade(ctx, a.PasswordHash, npw)
	if errors.Is(err, password.ErrBusy) {
		again(http.StatusServiceUnavailable, "The server is busy. Try again in a moment.", time.Second)
		return
	}
	if err != nil || !res.Match || a.Disabled {
		again(http.StatusUnauthorized, "The email address or password is not correct.", 0)
		return
	}
	_ = c.o.Throttle.Throttle(ctx, keys[:1], func([]account.ThrottleRow) []*account.ThrottleRow {
		return []*account.ThrottleRow{nil}
	})
	if err := c.startSession(w, r, a); err != nil {
		c.unavailable(w, r, err)
		return
	}
	r = r.WithContext(withSession(ctx, &sessionCtx{admin: a}))
	c.record(r, "console.signin", a.Email, nil, nil)
	http.Redirect(w, r, c.safeNext(next), http.StatusSeeOther)
}

type setupData struct {
	Token string
	Email string
}

// setup is the first-run page: the one-time link printed at start creates the first administrator.
func (c *Console) setup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		tok := r.URL.Query().Get("token")
		ok, err := c.o.Store.SetupTokenValid(ctx, hashToken(tok), c.now())
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if !ok || tok == "" {
			c.render(w, r, http.StatusNotFound, "error", view{Title: "Setup link", Problem: "This setup link is invalid, used or expired. " +
				"Restart the server to print a new one, or run gatehouse admin create EMAIL."})
			return
		}
		v := view{Title: "Create the first administrator", Data: setupData{Token: tok}}
		v.CSRF = c.preSession(w, r)
		c.render(w, r, http.StatusOK, "setup", v)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.render(w, r, http.StatusBadRequest, "error", view{Title: "Bad request", Problem: "The form could not be read."})
		return
	}
	tok, email, pw := r.PostFormValue("token"), r.PostFormValue("email"), r.PostFormValue("password")
	again := func(status int, msg string) {
		v := view{Title: "Create the first administrator", Problem: msg, Data: setupData{Token: tok, Email: email}}
		v.CSRF = c.preSession(w, r)
		c.render(w, r, status, "setup", v)
	}
	if !c.checkPreSession(r) {
		again(http.StatusForbidden, "The form was out of date. Try again.")
		return
	}
	if pw != r.PostFormValue("confirm") {
		again(http.StatusBadRequest, "The two passwords differ.")
		return
	}
	a, err := NewAdmin(ctx, c.o.Hasher, c.o.Policy, email, pw, c.now())
	if err != nil {
		again(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "password: "))
		return
	}
	if err := c.o.Store.SetupAdmin(ctx, hashToken(tok), a, c.now()); err != nil {
		if errors.Is(err, ErrSetupUsed) {
			c.render(w, r, http.StatusGone, "error", view{Title: "Setup link", Problem: "This setup link is invalid, used or expired."})
			return
		}
		c.unavailable(w, r, err)
		return
	}
	if err := c.startSession(w, r, a); err != nil {
		c.unavailable(w, r, err)
		return
	}
	r = r.WithContext(withSession(ctx, &sessionCtx{admin: a}))
	c.record(r, "console.admin.create", a.Email, nil, map[string]string{"email": a.Email, "by": "setup link"})
	c.redirect(w, r, "/data", "Welcome. Your administrator account is ready.")
}

// signout ends this session, or (everywhere=1) every session of the administrator.
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		c.notFound(w, r)
		return
	}
	s := sessionOf(r.Context())
	var err error
	if r.PostFormValue("everywhere") != "" {
		_, err = c.o.Store.DeleteAdminSessions(r.Context(), s.admin.ID)
		c.record(r, "console.signout.everywhere", s.admin.Email, nil, nil)
	} else {
		err = c.o.Store.DeleteSession(r.Context(), s.idHash)
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, c.o.Path+"/signin", http.StatusSeeOther)
}

type accountData struct {
	Sessions []*Session
	Current  string
	Admins   []*Admin
}

// account shows the administrator's sessions (with sign-out everywhere) and the administrators.
func (c *Console) account(w http.ResponseWriter, r *http.Request, rest []string) {
	s := sessionOf(r.Context())
	if len(rest) > 0 && rest[0] != "" {
		c.notFound(w, r)
		return
	}
	if r.Method == http.MethodPost {
		a, err := NewAdmin(r.Context(), c.o.Hasher, c.o.Policy, r.PostFormValue("email"), r.PostFormValue("password"), c.now())
		if err != nil {
			c.redirectProblem(w, r, "/account", strings.TrimPrefix(err.Error(), "password: "))
			return
		}
		if err := c.o.Store.CreateAdmin(r.Context(), a); err != nil {
			if errors.Is(err, ErrExists) {
				c.redirectProblem(w, r, "/account", err.Error())
				return
			}
			c.unavailable(w, r, err)
			return
		}
		c.record(r, "console.admin.create", a.Email, nil, map[string]string{"email": a.Email})
		c.redirect(w, r, "/account", "Administrator "+a.Email+" created.")
		return
	}
	sessions, err := c.o.Store.AdminSessions(r.Context(), s.admin.ID)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	admins, err := c.o.Store.ListAdmins(r.Context())
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "account", view{Title: "Account", Nav: "account", Problem: r.URL.Query().Get("problem"),
		Data: accountData{Sessions: sessions, Current: s.idHash, Admins: admins}})
}

// redirectProblem is redirect with an error message instead of a notice.
func (c *Console) redirectProblem(w http.ResponseWriter, r *http.Request, path, msg string) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	http.Redirect(w, r, c.o.Path+path+sep+"problem="+url.QueryEscape(truncate(msg, 300)), http.StatusSeeOther)
}
