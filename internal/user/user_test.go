package user_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/user"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newDir(t *testing.T, db *store.DB, keep bool) (*user.Directory, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	s, err := user.NewSealer("provider tokens", "master-key-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	d, err := user.NewDirectory(user.NewSQL(db), user.Options{KeepProviderTokens: keep, Sealer: s, Now: c.Now,
		RefreshIdle: 24 * time.Hour, RefreshLifetime: 72 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func TestLoginLinksByIssuerAndSubject(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		d, _ := newDir(t, db, false)
		u1, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://accounts.google.com", Subject: "1234", Claims: map[string]any{"email": "a@example.com"}})
		if err != nil || u1.ID != "Google:1234" || u1.Provider != "Google" {
			t.Fatalf("first login: %+v %v", u1, err)
		}
		// Same identity again: same user, claims updated.
		u2, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://accounts.google.com", Subject: "1234", Claims: map[string]any{"email": "b@example.com"}})
		if err != nil || u2.ID != u1.ID {
			t.Fatalf("second login: %+v %v", u2, err)
		}
		ids, err := d.Identities(ctx, u1.ID)
		if err != nil || len(ids) != 1 || ids[0].Claims["email"] != "b@example.com" || ids[0].HasTokens {
			t.Fatalf("identities: %+v %v", ids, err)
		}
		// Same email, other provider: never linked automatically.
		u3, err := d.Login(ctx, user.LinkInput{Provider: "Facebook", Issuer: "https://www.facebook.com", Subject: "99", Claims: map[string]any{"email": "b@example.com"}})
		if err != nil || u3.ID != "Facebook:99" {
			t.Fatalf("facebook: %+v %v", u3, err)
		}
		// Same subject under the same provider name from another issuer: a different, derived user id.
		u4, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://other.example", Subject: "1234"})
		if err != nil || u4.ID == u1.ID || !strings.HasPrefix(u4.ID, "Google:") {
			t.Fatalf("other issuer: %+v %v", u4, err)
		}
		// Generic provider and custom accounts.
		u5, err := d.Login(ctx, user.LinkInput{Provider: "custom", Issuer: "gatehouse:accounts", Subject: "acc1", UserID: "custom:acc1"})
		if err != nil || u5.ID != "custom:acc1" {
			t.Fatalf("custom: %+v %v", u5, err)
		}
		list, err := d.List(ctx, "", 10)
		if err != nil || len(list) != 4 {
			t.Fatalf("list: %d %v", len(list), err)
		}
		page, err := d.List(ctx, list[1].ID, 1)
		if err != nil || len(page) != 1 || page[0].ID != list[2].ID {
			t.Fatalf("page: %+v %v", page, err)
		}
		for _, bad := range []user.LinkInput{
			{Provider: "", Issuer: "i", Subject: "s"},
			{Provider: "a:b", Issuer: "i", Subject: "s"},
			{Provider: "Google", Issuer: "i", Subject: ""},
			{Provider: "Google", Issuer: "i", Subject: strings.Repeat("x", 300)},
			{Provider: "Google", Issuer: "i", Subject: "s\n"},
			{Provider: "Google", Issuer: "i", Subject: "s", Claims: map[string]any{"big": strings.Repeat("x", 9000)}},
		} {
			if _, err := d.Login(ctx, bad); !errors.Is(err, user.ErrBadInput) {
				t.Errorf("%+v: %v", bad.Provider+"/"+bad.Subject[:min(len(bad.Subject), 5)], err)
			}
		}
		if _, err := d.Get(ctx, "nobody:1"); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("get unknown: %v", err)
		}
	})
}

func TestConcurrentFirstLogin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		d, _ := newDir(t, db, false)
		var wg sync.WaitGroup
		ids := make(chan string, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, err := d.Login(context.Background(), user.LinkInput{Provider: "Aad", Issuer: "https://login.microsoftonline.com/t/v2.0", Subject: "s1"})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- u.ID
			}()
		}
		wg.Wait()
		close(ids)
		for id := range ids {
			if id != "Aad:s1" {
				t.Errorf("id %q", id)
			}
		}
	})
}

func TestProviderTokensSealed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		d, _ := newDir(t, db, true)
		in := user.LinkInput{Provider: "Twitter", Issuer: "https://api.x.com", Subject: "42",
			Tokens: &user.ProviderTokens{AccessToken: "at-secret-value", AccessTokenSecret: "ats-secret-value"}}
		if _, err := d.Login(ctx, in); err != nil {
			t.Fatal(err)
		}
		var raw string
		if err := db.QueryRowContext(ctx, `SELECT tokens FROM gatehouse_identities`).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(raw, "v1.") || strings.Contains(raw, "secret-value") {
			t.Fatalf("stored tokens not sealed: %q", raw)
		}
		got, err := d.ProviderTokens(ctx, in.Issuer, in.Subject)
		if err != nil || got.AccessToken != "at-secret-value" || got.AccessTokenSecret != "ats-secret-value" {
			t.Fatalf("unsealed: %+v %v", got, err)
		}
		// Moved to another identity's row, the ciphertext does not open (bound to issuer and subject).
		if _, err := d.Login(ctx, user.LinkInput{Provider: "Twitter", Issuer: "https://api.x.com", Subject: "43"}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE gatehouse_identities SET tokens = ? WHERE subject = '43'`), raw); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ProviderTokens(ctx, in.Issuer, "43"); !errors.Is(err, user.ErrUnseal) {
			t.Fatalf("swapped row: %v", err)
		}
		ids, _ := d.Identities(ctx, "Twitter:42")
		if len(ids) != 1 || !ids[0].HasTokens {
			t.Fatalf("identities: %+v", ids)
		}
	})
	// Off by default: nothing stored.
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		d, _ := newDir(t, db, false)
		in := user.LinkInput{Provider: "Google", Issuer: "i", Subject: "s", Tokens: &user.ProviderTokens{AccessToken: "x"}}
		if _, err := d.Login(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		var raw string
		db.QueryRowContext(context.Background(), `SELECT tokens FROM gatehouse_identities`).Scan(&raw) //nolint:errcheck
		if raw != "" {
			t.Fatalf("tokens stored while off: %q", raw)
		}
	})
}

func TestSealer(t *testing.T) {
	old, _ := user.NewSealer("p", "old-master-key-0123456789")
	cur, _ := user.NewSealer("p", "new-master-key-0123456789", "old-master-key-0123456789")
	other, _ := user.NewSealer("q", "new-master-key-0123456789")
	s, err := old.Seal([]byte("hello"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := cur.Open(s, []byte("ad")); err != nil || string(pt) != "hello" {
		t.Fatalf("previous key: %q %v", pt, err)
	}
	s2, _ := cur.Seal([]byte("hello"), []byte("ad"))
	if s2 == s {
		t.Fatal("sealing is deterministic")
	}
	for name, bad := range map[string]string{
		"other purpose": mustSeal(t, other, "ad"), "wrong ad": mustSeal(t, cur, "xx"), "empty": "", "no prefix": "abc",
		"bad base64": "v1.!!!", "short": "v1.AAAA", "flipped": flip(s2),
	} {
		if _, err := cur.Open(bad, []byte("ad")); !errors.Is(err, user.ErrUnseal) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := old.Open(s2, []byte("ad")); !errors.Is(err, user.ErrUnseal) {
		t.Error("old key opened a value sealed with the new one")
	}
}

func mustSeal(t *testing.T, s *user.Sealer, ad string) string {
	v, err := s.Seal([]byte("hello"), []byte(ad))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func flip(s string) string {
	b := []byte(s)
	i := len(b) - 3
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestRefreshTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		d, c := newDir(t, db, false)
		u, _ := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "i", Subject: "1"})
		rt1, err := d.IssueRefresh(ctx, u.ID, "Google")
		if err != nil || !strings.HasPrefix(rt1, "ghr_") {
			t.Fatalf("issue: %q %v", rt1, err)
		}
		var stored string
		db.QueryRowContext(ctx, `SELECT token_hash FROM gatehouse_refresh_tokens`).Scan(&stored) //nolint:errcheck
		if stored == "" || strings.Contains(rt1, stored) || strings.Contains(stored, rt1[4:]) {
			t.Fatalf("stored %q", stored)
		}
		r, err := d.Refresh(ctx, rt1)
		if err != nil || r.UserID != u.ID || r.Audience != "Google" || r.RefreshToken == rt1 {
			t.Fatalf("rotate: %+v %v", r, err)
		}
		rt2 := r.RefreshToken
		// Reusing the spent token revokes the family: rt2 stops working too.
		if _, err := d.Refresh(ctx, rt1); !errors.Is(err, user.ErrRefreshReused) {
			t.Fatalf("reuse: %v", err)
		}
		if _, err := d.Refresh(ctx, rt2); !errors.Is(err, user.ErrRefreshReused) {
			t.Fatalf("after reuse: %v", err)
		}
		for _, bad := range []string{"", "ghr_unknown", "nope", "ghr_" + strings.Repeat("a", 200)} {
			if _, err := d.Refresh(ctx, bad); !errors.Is(err, user.ErrInvalidRefresh) {
				t.Errorf("%q: %v", bad, err)
			}
		}
		// Idle expiry (24 h) and absolute lifetime (72 h).
		rt, _ := d.IssueRefresh(ctx, u.ID, "Google")
		c.Add(25 * time.Hour)
		if _, err := d.Refresh(ctx, rt); !errors.Is(err, user.ErrRefreshExpired) {
			t.Fatalf("idle: %v", err)
		}
		rt, _ = d.IssueRefresh(ctx, u.ID, "Google")
		for range 3 {
			c.Add(23 * time.Hour)
			r, err := d.Refresh(ctx, rt)
			if err != nil {
				t.Fatalf("within lifetime: %v", err)
			}
			rt = r.RefreshToken
		}
		c.Add(4 * time.Hour) // 73 h after the family started
		if _, err := d.Refresh(ctx, rt); !errors.Is(err, user.ErrRefreshExpired) {
			t.Fatalf("absolute: %v", err)
		}
		// Logout of one session.
		rt, _ = d.IssueRefresh(ctx, u.ID, "Google")
		if err := d.RevokeRefresh(ctx, rt); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Refresh(ctx, rt); err == nil {
			t.Fatal("revoked token refreshed")
		}
		// Disable revokes all refresh tokens.
		rt, _ = d.IssueRefresh(ctx, u.ID, "Google")
		if err := d.Disable(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Refresh(ctx, rt); err == nil {
			t.Fatal("refresh after disable")
		}
	})
}

func TestConcurrentRefreshOnlyOneWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		d, _ := newDir(t, db, false)
		rt, _ := d.IssueRefresh(ctx, "Google:1", "Google")
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := d.Refresh(ctx, rt); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent rotations succeeded", wins)
		}
	})
}

func TestDisableAndRevocationList(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		d, c := newDir(t, db, false)
		// Two instances sharing the database, each with its own list.
		l1 := user.NewRevocationList(user.NewSQL(db), time.Second, nil, c.Now)
		l2 := user.NewRevocationList(user.NewSQL(db), time.Second, nil, c.Now)
		for _, l := range []*user.RevocationList{l1, l2} {
			if err := l.Sync(ctx); err != nil || !l.Ready() {
				t.Fatal(err)
			}
		}
		u, _ := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "i", Subject: "7"})
		if _, ok := l2.RevokedBefore(u.ID); ok {
			t.Fatal("revoked before anything happened")
		}
		if err := d.RevokeAll(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		c.Add(2 * time.Second)
		if err := l2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		cut, ok := l2.RevokedBefore(u.ID)
		if !ok || !cut.Equal(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("cut-off %v %v", cut, ok)
		}
		// Disable: far-future cut-off; the login is refused.
		if err := d.Disable(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "i", Subject: "7"}); !errors.Is(err, user.ErrDisabled) {
			t.Fatalf("login of disabled user: %v", err)
		}
		// RevokeAll never lowers a disabled user's cut-off.
		if err := d.RevokeAll(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		c.Add(2 * time.Second)
		l1.Sync(ctx) //nolint:errcheck
		if cut, _ := l1.RevokedBefore(u.ID); cut.Year() != 9999 {
			t.Fatalf("disabled cut-off %v", cut)
		}
		got, _ := d.Get(ctx, u.ID)
		if !got.Disabled {
			t.Fatal("not disabled")
		}
		// Enable: the cut-off drops to the enable time; both instances see it.
		c.Add(10 * time.Minute)
		if err := d.Enable(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		c.Add(2 * time.Second)
		for _, l := range []*user.RevocationList{l1, l2} {
			l.Sync(ctx) //nolint:errcheck
			if cut, _ := l.RevokedBefore(u.ID); !cut.Equal(time.Date(2026, 11, 1, 12, 10, 4, 0, time.UTC)) {
				t.Fatalf("enabled cut-off %v", cut)
			}
		}
		if _, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "i", Subject: "7"}); err != nil {
			t.Fatal(err)
		}
		if err := d.Disable(ctx, "nobody:0"); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("disable unknown: %v", err)
		}
	})
}

func TestRevocationListRun(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	// The directory writes with the real clock here: the list polls by the time rows were written, and
	// the fake clock of newDir is weeks behind the list's.
	d, err := user.NewDirectory(user.NewSQL(db), user.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := user.NewRevocationList(user.NewSQL(db), time.Millisecond, nil, nil)
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	if err := d.RevokeAll(context.Background(), "Google:9"); err != nil {
		t.Fatal(err)
	}
	// Wait (bounded by the test timeout) until the background poll picks the row up.
	for {
		if _, ok := l.RevokedBefore("Google:9"); ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}

func TestConsumeOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := user.NewSQL(db)
		now := time.Now()
		if ok, err := s.ConsumeOnce(ctx, "state-1", now.Add(time.Minute), now); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if ok, err := s.ConsumeOnce(ctx, "state-1", now.Add(time.Minute), now); ok || err != nil {
			t.Fatal("replay accepted", err)
		}
		// Once expired, the entry is purged (the state itself has expired by then and is refused elsewhere).
		if ok, err := s.ConsumeOnce(ctx, "state-2", now.Add(time.Minute), now.Add(2*time.Minute)); !ok || err != nil {
			t.Fatal(ok, err)
		}
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM gatehouse_login_states`).Scan(&n) //nolint:errcheck
		if n != 1 {
			t.Fatalf("%d rows", n)
		}
	})
}

func TestOnRevokeAppliesLocally(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	l := user.NewRevocationList(user.NewSQL(db), time.Hour, nil, c.Now)
	d, err := user.NewDirectory(user.NewSQL(db), user.Options{Now: c.Now, OnRevoke: l.Apply})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "i", Subject: "1"}); err != nil {
		t.Fatal(err)
	}
	// No Sync: the local list knows at once.
	if err := d.RevokeAll(ctx, "Google:1"); err != nil {
		t.Fatal(err)
	}
	if cut, ok := l.RevokedBefore("Google:1"); !ok || !cut.Equal(c.Now()) {
		t.Fatalf("after logout: %v %v", cut, ok)
	}
	if err := d.Disable(ctx, "Google:1"); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	if err := d.RevokeAll(ctx, "Google:1"); err != nil { // a logout never lowers a disabled user's cut-off
		t.Fatal(err)
	}
	if cut, _ := l.RevokedBefore("Google:1"); cut.Year() != 9999 {
		t.Fatalf("disabled: %v", cut)
	}
	if err := d.Enable(ctx, "Google:1"); err != nil {
		t.Fatal(err)
	}
	if cut, _ := l.RevokedBefore("Google:1"); !cut.Equal(c.Now()) {
		t.Fatalf("enabled: %v", cut)
	}
}
