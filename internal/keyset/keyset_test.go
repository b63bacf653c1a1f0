package keyset_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/keyset/keysettest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// recorder is an Observer that counts events and lets tests wait for fetches.
type recorder struct {
	mu       sync.Mutex
	fetches  []keyset.FetchEvent
	limited  int
	misses   map[keyset.MissOutcome]int
	stale    int
	fetchedC chan keyset.FetchEvent
}

func newRecorder() *recorder {
	return &recorder{misses: map[keyset.MissOutcome]int{}, fetchedC: make(chan keyset.FetchEvent, 1024)}
}

func (r *recorder) FetchDone(e keyset.FetchEvent) {
	r.mu.Lock()
	r.fetches = append(r.fetches, e)
	r.mu.Unlock()
	select {
	case r.fetchedC <- e:
	default:
	}
}

func (r *recorder) ForcedRefreshRateLimited(string) {
	r.mu.Lock()
	r.limited++
	r.mu.Unlock()
}

func (r *recorder) KeyMiss(_ string, o keyset.MissOutcome) {
	r.mu.Lock()
	r.misses[o]++
	r.mu.Unlock()
}

func (r *recorder) StaleLimitExceeded(string) {
	r.mu.Lock()
	r.stale++
	r.mu.Unlock()
}

func (r *recorder) count(kind keyset.FetchKind, failed bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.fetches {
		if e.Kind == kind && (e.Err != nil) == failed {
			n++
		}
	}
	return n
}

func (r *recorder) miss(o keyset.MissOutcome) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.misses[o]
}

type fixture struct {
	clock *keysettest.Clock
	prov  *keysettest.Provider
	set   *keyset.Set
	rec   *recorder
}

func newFixture(t *testing.T, mutate func(*keyset.Config), opts ...keysettest.Option) *fixture {
	t.Helper()
	clock := keysettest.NewClock(t0)
	prov := keysettest.NewProvider(t, append([]keysettest.Option{keysettest.WithClock(clock)}, opts...)...)
	rec := newRecorder()
	cfg := keyset.Config{
		Issuer:   prov.Issuer(),
		URL:      prov.JWKSURL(),
		Client:   prov.Client(),
		Clock:    clock,
		Observer: rec,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	set, err := keyset.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{clock: clock, prov: prov, set: set, rec: rec}
}

func (f *fixture) refresh(t *testing.T) {
	t.Helper()
	if err := f.set.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}

func (f *fixture) get(kid string, refresh bool) (*keyset.Key, error) {
	return f.set.Get(context.Background(), keyset.KeyID{Kid: kid}, refresh)
}

func TestGetAfterInitialFetch(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.get(f.prov.Current().ID, false); !errors.Is(err, keyset.ErrUnavailable) {
		t.Fatalf("before any fetch: got %v, want ErrUnavailable", err)
	}
	f.refresh(t)
	k, err := f.get(f.prov.Current().ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if k.Algorithm != jose.RS256 || k.Thumbprint != f.prov.Current().Thumbprint {
		t.Fatalf("key = %+v", k)
	}
	if got := f.prov.Fetches(); got != 1 {
		t.Fatalf("fetches = %d, want 1", got)
	}
}

func TestRotationPrePublishedUsesBackgroundRefresh(t *testing.T) {
	f := newFixture(t, nil, keysettest.WithMaxAge(time.Hour))
	f.refresh(t)
	k2 := f.prov.AddKey(jose.RS256) // published, not yet used
	if due, _ := f.set.RefreshIfDue(context.Background()); due {
		t.Fatal("refresh due right after a fetch")
	}
	f.clock.Advance(45 * time.Minute) // 3/4 of max-age
	due, err := f.set.RefreshIfDue(context.Background())
	if !due || err != nil {
		t.Fatalf("RefreshIfDue = %v, %v; want due, nil", due, err)
	}
	f.prov.Use(k2)
	if _, err := f.get(k2.ID, true); err != nil {
		t.Fatal(err)
	}
	if f.prov.ForcedFetches() != 0 || f.prov.Fetches() != 2 {
		t.Fatalf("fetches = %d (forced %d), want 2 (0)", f.prov.Fetches(), f.prov.ForcedFetches())
	}
}

func TestRotationJustBeforeSigningForcesOneFetch(t *testing.T) {
	f := newFixture(t, nil)
	f.refresh(t)
	k2 := f.prov.Rotate(jose.ES256)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := f.get(k2.ID, true)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.prov.ForcedFetches() != 1 || f.prov.Fetches() != 2 {
		t.Fatalf("fetches = %d (forced %d), want 2 (1)", f.prov.Fetches(), f.prov.ForcedFetches())
	}
}

func TestUnknownKidRateLimitAndNegativeCache(t *testing.T) {
	f := newFixture(t, func(c *keyset.Config) {
		c.ForcedRefreshInterval = 30 * time.Second
		c.NegativeTTL = 10 * time.Second
	})
	f.refresh(t)

	if _, err := f.get("absent", false); !errors.Is(err, keyset.ErrUnknownKey) || f.prov.Fetches() != 1 {
		t.Fatalf("no-refresh miss: %v, fetches %d", err, f.prov.Fetches())
	}
	if _, err := f.get("absent", true); !errors.Is(err, keyset.ErrUnknownKey) {
		t.Fatal(err)
	}
	if f.prov.ForcedFetches() != 1 {
		t.Fatalf("forced fetches = %d, want 1", f.prov.ForcedFetches())
	}
	// Proven absent: negative cache, no fetch, no rate-limit check.
	if _, err := f.get("absent", true); !errors.Is(err, keyset.ErrUnknownKey) || f.rec.miss(keyset.MissNegative) != 1 {
		t.Fatalf("negative: %v, %d", err, f.rec.miss(keyset.MissNegative))
	}
	// Another unknown kid within the interval: rate limited.
	_, err := f.get("other", true)
	if !errors.Is(err, keyset.ErrUnknownKey) || !errors.Is(err, keyset.ErrRateLimited) {
		t.Fatalf("rate limited: %v", err)
	}
	if f.prov.ForcedFetches() != 1 || f.rec.miss(keyset.MissRateLimited) != 1 {
		t.Fatalf("forced %d limited %d", f.prov.ForcedFetches(), f.rec.miss(keyset.MissRateLimited))
	}
	// The key appears; after the interval a forced fetch finds it.
	k := f.prov.AddKey(jose.RS256)
	f.clock.Advance(30 * time.Second)
	if _, err := f.get(k.ID, true); err != nil {
		t.Fatal(err)
	}
	if f.prov.ForcedFetches() != 2 {
		t.Fatalf("forced fetches = %d, want 2", f.prov.ForcedFetches())
	}
}

func TestRemovedKeyRejectedAfterNextRefresh(t *testing.T) {
	f := newFixture(t, nil, keysettest.WithMaxAge(time.Hour))
	k1 := f.prov.Current()
	f.prov.Rotate(jose.RS256)
	f.refresh(t)
	if _, err := f.get(k1.ID, false); err != nil {
		t.Fatal(err)
	}
	f.prov.Remove(k1)
	if _, err := f.get(k1.ID, false); err != nil {
		t.Fatalf("still cached until the next refresh: %v", err)
	}
	f.clock.Advance(time.Hour)
	if due, err := f.set.RefreshIfDue(context.Background()); !due || err != nil {
		t.Fatalf("RefreshIfDue: %v %v", due, err)
	}
	if _, err := f.get(k1.ID, true); !errors.Is(err, keyset.ErrUnknownKey) {
		t.Fatalf("removed key: %v", err)
	}
}

func TestProviderDownServesLastGoodThenFailsClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := keyset.NewPrometheusObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *keyset.Config) { c.Observer = obs }, keysettest.WithMaxAge(10*time.Minute))
	f.refresh(t)
	kid := f.prov.Current().ID
	f.prov.SetMode(keysettest.ModeDown)

	// One hour of outage, with the background loop's due checks every minute.
	for range 60 {
		f.clock.Advance(time.Minute)
		_, _ = f.set.RefreshIfDue(context.Background())
		if _, err := f.get(kid, true); err != nil {
			t.Fatalf("at %v: %v", f.clock.Now().Sub(t0), err)
		}
	}
	failed := counter(t, reg, "gatehouse_keyset_fetches_total", map[string]string{"kind": "background", "result": "error"})
	if failed < 5 {
		t.Fatalf("failed fetches counted = %v, want retries with back-off", failed)
	}
	// Back-off: far fewer attempts than due checks.
	if got := f.prov.Fetches(); got > 20 {
		t.Fatalf("fetches during a 1 h outage = %d, want back-off", got)
	}
	f.clock.Advance(47*time.Hour + time.Second) // past the 48 h hard limit
	if _, err := f.get(kid, true); !errors.Is(err, keyset.ErrUnavailable) {
		t.Fatalf("past the hard limit: %v", err)
	}
	if counter(t, reg, "gatehouse_keyset_stale_limit_exceeded_total", nil) < 1 {
		t.Fatal("stale limit not counted")
	}
	// Provider back: the next due refresh restores service.
	f.prov.SetMode(keysettest.ModeOK)
	f.clock.Advance(keyset.DefaultRetryMax)
	if due, err := f.set.RefreshIfDue(context.Background()); !due || err != nil {
		t.Fatalf("RefreshIfDue after recovery: %v %v", due, err)
	}
	if _, err := f.get(kid, false); err != nil {
		t.Fatal(err)
	}
}

func TestStartupWithUnreachableProvider(t *testing.T) {
	clock := keysettest.NewClock(t0)
	set, err := keyset.New(keyset.Config{Issuer: "x", URL: keysettest.RefusedURL(t), Clock: clock})
	if err != nil {
		t.Fatalf("New must not fail: %v", err)
	}
	if err := set.Refresh(context.Background()); err == nil {
		t.Fatal("refresh against a closed port succeeded")
	}
	_, err = set.Get(context.Background(), keyset.KeyID{Kid: "k"}, true)
	if !errors.Is(err, keyset.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestBadResponsesKeepLastGoodSet(t *testing.T) {
	for _, mode := range []keysettest.Mode{keysettest.ModeDown, keysettest.ModeGarbage, keysettest.ModeEmpty, keysettest.ModeDrop} {
		f := newFixture(t, nil)
		f.refresh(t)
		kid := f.prov.Current().ID
		f.prov.SetMode(mode)
		if err := f.set.Refresh(context.Background()); err == nil {
			t.Fatalf("mode %d: refresh succeeded", mode)
		}
		if _, err := f.get(kid, false); err != nil {
			t.Fatalf("mode %d: last good set lost: %v", mode, err)
		}
		if f.rec.count(keyset.FetchBackground, true) != 1 {
			t.Fatalf("mode %d: failure not observed", mode)
		}
	}
}

func TestHangingProvider(t *testing.T) {
	f := newFixture(t, func(c *keyset.Config) { c.FetchTimeout = 100 * time.Millisecond })
	f.prov.SetMode(keysettest.ModeHang)

	// A waiter's own context ends its wait even though the fetch hangs.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.set.Get(ctx, keyset.KeyID{Kid: "k"}, true)
		done <- err
	}()
	<-f.prov.Hanging()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The fetch itself is bounded by FetchTimeout.
	if err := f.set.Refresh(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
}

func TestUnsupportedKeysAreSkipped(t *testing.T) {
	f := newFixture(t, nil)
	f.prov.SetUnsupportedKeys(true)
	f.refresh(t)
	if _, err := f.get(f.prov.Current().ID, false); err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"unsupported-okp", "unsupported-enc", "unsupported-weak", "unsupported-mismatch", "unsupported-akp"} {
		if _, err := f.get(kid, false); !errors.Is(err, keyset.ErrUnknownKey) {
			t.Errorf("%s: %v", kid, err)
		}
	}
	f.rec.mu.Lock()
	last := f.rec.fetches[len(f.rec.fetches)-1]
	f.rec.mu.Unlock()
	if last.Keys != 1 || last.Skipped != 5 {
		t.Fatalf("keys %d skipped %d, want 1 and 5", last.Keys, last.Skipped)
	}
}

func TestGooglePEMCertificates(t *testing.T) {
	f := newFixture(t, func(c *keyset.Config) { c.Format = keyset.FormatAuto })
	set, err := keyset.New(keyset.Config{Issuer: "google", URL: f.prov.CertsURL(), Client: f.prov.Client(), Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.prov.AddKey(jose.ES256)
	f.prov.SetUnsupportedKeys(true)
	if err := set.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, k := range f.prov.Published() {
		got, err := set.Get(context.Background(), keyset.KeyID{Kid: k.ID}, false)
		if err != nil {
			t.Fatal(err)
		}
		if got.Algorithm != k.Alg || got.Thumbprint != k.Thumbprint {
			t.Fatalf("got %+v for %s", got, k.ID)
		}
	}
}

func TestX5tKeyedSet(t *testing.T) {
	f := newFixture(t, nil, keysettest.WithX5tOnly())
	f.refresh(t)
	k := f.prov.Current()
	got, err := f.set.Get(context.Background(), keyset.KeyID{X5t: k.Thumbprint}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "" || got.Thumbprint != k.Thumbprint {
		t.Fatalf("got %+v", got)
	}
	// kid present but unknown, x5t known: found by x5t.
	if _, err := f.set.Get(context.Background(), keyset.KeyID{Kid: "nope", X5t: k.Thumbprint}, false); err != nil {
		t.Fatal(err)
	}
}

func TestBodyCapAndStatus(t *testing.T) {
	big := strings.Repeat(" ", 2<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write([]byte(`{"keys":[]` + big + `}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	for path, want := range map[string]error{"/big": keyset.ErrBodyTooLarge, "/404": &keyset.StatusError{}} {
		set, err := keyset.New(keyset.Config{Issuer: "x", URL: srv.URL + path})
		if err != nil {
			t.Fatal(err)
		}
		err = set.Refresh(context.Background())
		var se *keyset.StatusError
		if !errors.Is(err, want) && !(errors.As(want, &se) && errors.As(err, &se) && se.Code == 404) {
			t.Errorf("%s: got %v, want %v", path, err, want)
		}
	}
}

func TestRunLoopRefreshesOnSchedule(t *testing.T) {
	f := newFixture(t, nil, keysettest.WithMaxAge(20*time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { f.set.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	waitFetch := func() keyset.FetchEvent {
		t.Helper()
		select {
		case e := <-f.rec.fetchedC:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no fetch")
		}
		return keyset.FetchEvent{}
	}
	if e := waitFetch(); e.Err != nil {
		t.Fatal(e.Err)
	}
	if err := f.clock.WaitForWaiters(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if next := f.set.NextRefresh(); !next.Equal(t0.Add(15 * time.Minute)) {
		t.Fatalf("next refresh at %v, want 15 min after the fetch", next.Sub(t0))
	}
	f.clock.Advance(15 * time.Minute)
	if e := waitFetch(); e.Err != nil || e.Kind != keyset.FetchBackground {
		t.Fatalf("second fetch: %+v", e)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]keyset.Config{
		"no issuer":   {URL: "https://x/jwks"},
		"relative":    {Issuer: "x", URL: "/jwks"},
		"ftp":         {Issuer: "x", URL: "ftp://x/jwks"},
		"min > max":   {Issuer: "x", URL: "https://x/jwks", MinRefresh: time.Hour, MaxRefresh: time.Minute},
		"retry order": {Issuer: "x", URL: "https://x/jwks", RetryMin: time.Hour, RetryMax: time.Minute},
	} {
		if _, err := keyset.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}
