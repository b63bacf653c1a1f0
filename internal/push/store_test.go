package push

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestStore is the conformance suite of Store, on SQLite and PostgreSQL.
func TestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewStore(db)

		r := Registration{ID: "r1", Platform: APNs, Channel: "dev-aaaa", Tags: []string{"a", "b", "a"}, Headers: map[string]string{"X": "1"}, UserID: "u1"}
		if err := s.PutRegistration(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.Registration(ctx, "r1")
		if err != nil || got.Channel != "dev-aaaa" || len(got.Tags) != 3 || got.Headers["X"] != "1" || got.UserID != "u1" {
			t.Fatalf("Registration = %+v, %v", got, err)
		}
		created := got.CreatedAt
		time.Sleep(5 * time.Millisecond)
		r.Tags = []string{"c"}
		r.UpdatedAt = time.Now()
		if err := s.PutRegistration(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Registration(ctx, "r1")
		if !got.CreatedAt.Equal(created) || len(got.Tags) != 1 {
			t.Fatalf("replaced: %+v (created %v)", got, created)
		}
		if rs, _ := s.ByTag(ctx, "a", 10); len(rs) != 0 {
			t.Fatalf("old tag still indexed: %v", rs)
		}
		if rs, _ := s.ByTag(ctx, "c", 10); len(rs) != 1 {
			t.Fatalf("ByTag c = %v", rs)
		}

		// An installation: a native row and a template row, replaced as a whole.
		rows := []Registration{
			{ID: "i:inst1", Platform: FCM, Channel: "dev-bbbb", Tags: []string{"x"}},
			{ID: "i:inst1/t1", Platform: FCM, Channel: "dev-bbbb", Tags: []string{"x", "y"}, TemplateName: "t1", TemplateBody: `{"data":{"m":"$(m)"}}`},
		}
		if err := s.PutInstallation(ctx, "inst1", rows); err != nil {
			t.Fatal(err)
		}
		inst, err := s.Installation(ctx, "inst1")
		if err != nil || len(inst) != 2 || inst[0].InstallationID != "inst1" {
			t.Fatalf("Installation = %+v, %v", inst, err)
		}
		if err := s.PutInstallation(ctx, "inst1", rows[:1]); err != nil {
			t.Fatal(err)
		}
		if inst, _ := s.Installation(ctx, "inst1"); len(inst) != 1 {
			t.Fatalf("the replaced installation has %d rows", len(inst))
		}
		if rs, _ := s.ByTag(ctx, "y", 10); len(rs) != 0 {
			t.Fatalf("the removed template's tag is still indexed")
		}
		if err := s.DeleteRegistration(ctx, "i:inst1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("an installation row deleted as a v1 registration: %v", err)
		}

		// Candidates: by platform, template or native, by tags, paged by id.
		for i, id := range []string{"p3", "p1", "p2"} {
			tags := []string{"news"}
			if i == 0 {
				tags = []string{"sport"}
			}
			if err := s.PutRegistration(ctx, Registration{ID: id, Platform: WNS, Channel: "dev-w" + id, Tags: tags}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutRegistration(ctx, Registration{ID: "p4", Platform: WNS, Channel: "dev-wp4", Tags: []string{"news"}, TemplateName: "t", TemplateBody: "<x/>"}); err != nil {
			t.Fatal(err)
		}
		ids := func(rs []Registration) []string {
			var out []string
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		c, _ := s.Candidates(ctx, Query{Platform: WNS, Tag: "news"}, "", 1)
		if got := ids(c); len(got) != 1 || got[0] != "p1" {
			t.Fatalf("page 1 = %v", got)
		}
		c, _ = s.Candidates(ctx, Query{Platform: WNS, Tag: "news"}, "p1", 5)
		if got := ids(c); len(got) != 1 || got[0] != "p2" {
			t.Fatalf("page 2 = %v", got)
		}
		c, _ = s.Candidates(ctx, Query{Platform: WNS, Tag: "sport"}, "", 5)
		if got := ids(c); len(got) != 1 || got[0] != "p3" {
			t.Fatalf("sport = %v", got)
		}
		c, _ = s.Candidates(ctx, Query{Templates: true}, "", 10)
		if got := ids(c); len(got) != 1 || got[0] != "p4" {
			t.Fatalf("templates = %v", got)
		}
		c, _ = s.Candidates(ctx, Query{Platform: WNS}, "", 10)
		if len(c) != 3 {
			t.Fatalf("all native WNS = %v", ids(c))
		}
		if rs, _ := s.ByChannel(ctx, WNS, "dev-wp1"); len(rs) != 1 {
			t.Fatalf("ByChannel = %v", rs)
		}
		if n, err := s.RemoveChannel(ctx, WNS, "dev-wp1"); n != 1 || err != nil {
			t.Fatalf("RemoveChannel = %d, %v", n, err)
		}
		if _, err := s.Registration(ctx, "p1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("removed registration: %v", err)
		}
		if err := s.DeleteInstallation(ctx, "inst1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteInstallation(ctx, "inst1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}

		// The outbox: enqueue in a transaction that rolls back leaves nothing.
		now := time.UnixMilli(time.Now().UnixMilli())
		msg := func(id string) Message {
			return Message{ID: id, Platform: APNs, Channel: "dev-" + id, Payload: []byte(`{"aps":{}}`), Headers: map[string]string{"apns-priority": "10"}, CreatedAt: now}
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, tx, []Message{msg("rolledback")}); err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback()
		if n, _ := s.Pending(ctx); n != 0 {
			t.Fatalf("a rolled-back enqueue left %d messages", n)
		}
		var batch []Message
		for i := 0; i < 450; i++ { // more than one INSERT batch
			batch = append(batch, msg(string(rune('a'+i/26%26))+string(rune('a'+i%26))+"-"+strconv.Itoa(i)))
		}
		if err := s.Enqueue(ctx, nil, batch); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Pending(ctx); n != 450 {
			t.Fatalf("Pending = %d", n)
		}
		if got, _ := s.Claim(ctx, FCM, now, time.Minute, 10); len(got) != 0 {
			t.Fatalf("claimed another platform's messages: %d", len(got))
		}
		first, err := s.Claim(ctx, APNs, now, time.Minute, 10)
		if err != nil || len(first) != 10 {
			t.Fatalf("Claim = %d, %v", len(first), err)
		}
		m := first[0]
		if m.Attempts != 1 || m.Headers["apns-priority"] != "10" || string(m.Payload) != `{"aps":{}}` || m.Lease == "" || !m.CreatedAt.Equal(now) {
			t.Fatalf("claimed %+v", m)
		}
		// Leased messages are invisible until the lease ends; then they come back, attempts counted.
		rest, _ := s.Claim(ctx, APNs, now, time.Minute, 1000)
		if len(rest) != 440 {
			t.Fatalf("second claim = %d", len(rest))
		}
		again, _ := s.Claim(ctx, APNs, now.Add(61*time.Second), time.Minute, 1)
		if len(again) != 1 || again[0].Attempts != 2 {
			t.Fatalf("after the lease: %+v", again)
		}
		// The old lease no longer settles the message (fencing).
		old := first[0]
		if again[0].ID == old.ID {
			if ok, _ := s.Complete(ctx, old.ID, old.Lease); ok {
				t.Fatal("a stale lease completed a message")
			}
		}
		if ok, err := s.Complete(ctx, again[0].ID, again[0].Lease); !ok || err != nil {
			t.Fatalf("Complete = %v, %v", ok, err)
		}
		// CompleteMany removes the messages whose lease matches, and only those.
		before, _ := s.Pending(ctx)
		if err := s.CompleteMany(ctx, []string{first[2].ID, first[3].ID, first[4].ID}, []string{first[2].Lease, first[3].Lease, "stale"}); err != nil {
			t.Fatal(err)
		}
		if after, _ := s.Pending(ctx); after != before-2 {
			t.Fatalf("CompleteMany removed %d messages, want 2", before-after)
		}
		if ok, err := s.Retry(ctx, first[1].ID, first[1].Lease, now.Add(time.Hour), "503 down"); !ok || err != nil {
			t.Fatalf("Retry = %v, %v", ok, err)
		}
		due, _ := s.Claim(ctx, APNs, now.Add(30*time.Minute), time.Minute, 1000)
		for _, d := range due {
			if d.ID == first[1].ID {
				t.Fatal("a message retried in an hour came back in 30 minutes")
			}
		}
		later, _ := s.Claim(ctx, APNs, now.Add(2*time.Hour), time.Minute, 1000)
		found := false
		for _, d := range later {
			if d.ID == first[1].ID {
				found = d.LastError == "503 down" && d.Attempts == 2
			}
		}
		if !found {
			t.Fatal("the retried message did not come back with its error and attempts")
		}
	})
}

// TestClaimExclusive runs claimers in parallel on one outbox: every message is claimed once.
func TestClaimExclusive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewStore(db)
		now := time.Now()
		var msgs []Message
		for i := 0; i < 600; i++ {
			msgs = append(msgs, Message{ID: "m" + strconv.Itoa(i), Platform: APNs, Channel: "dev-x", Payload: []byte("{}"), CreatedAt: now})
		}
		if err := s.Enqueue(ctx, nil, msgs); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		for w := 0; w < 6; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := s.Claim(ctx, APNs, now, time.Minute, 25)
					if err != nil {
						t.Error(err)
						return
					}
					if len(c) == 0 {
						return
					}
					mu.Lock()
					for _, m := range c {
						got = append(got, m.ID)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		sort.Strings(got)
		if len(got) != 600 {
			t.Fatalf("claimed %d messages, want 600", len(got))
		}
		for i := 1; i < len(got); i++ {
			if got[i] == got[i-1] {
				t.Fatalf("%s claimed twice", got[i])
			}
		}
	})
}
