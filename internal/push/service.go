package push

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/notify"
)

// NotifyChannel is the internal/notify channel on which a send wakes every instance's workers.
const NotifyChannel = "push"

// Config tunes registrations, sends and delivery. Zero values take the defaults in brackets.
type Config struct {
	// MaxTags is how many tags one registration may have [60, Notification Hubs' limit].
	MaxTags int
	// ClientTags are the patterns (path.Match syntax: * and ?) of tags a client may set on its own
	// registrations; tags starting with _UserId: are never among them [* : any other tag].
	ClientTags []string
	// MaxFanout bounds how many devices one send may reach [100000].
	MaxFanout int
	// Concurrency bounds the deliveries in flight per platform on one instance [16].
	Concurrency int
	// RateLimit is the deliveries per second of one instance across platforms (0: unlimited), with
	// RateBurst [= RateLimit, at least 1].
	RateLimit float64
	RateBurst int
	// Lease is how long a claimed message stays invisible to other workers [60s]; it must exceed
	// SendTimeout, the time limit of one delivery [30s].
	Lease       time.Duration
	SendTimeout time.Duration
	// RetryBase and RetryMax bound the exponential backoff between attempts [1s, 10m];
	// MaxAttempts is when a message is given up [10]; MessageTTL is how long an undelivered message
	// is worth delivering [24h].
	RetryBase   time.Duration
	RetryMax    time.Duration
	MaxAttempts int
	MessageTTL  time.Duration
	// Poll is how often idle workers look at the outbox without a notification [1s].
	Poll time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxTags <= 0 {
		c.MaxTags = 60
	}
	if c.ClientTags == nil {
		c.ClientTags = []string{"*"}
	}
	if c.MaxFanout <= 0 {
		c.MaxFanout = 100000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	def(&c.Lease, 60*time.Second)
	def(&c.SendTimeout, 30*time.Second)
	def(&c.RetryBase, time.Second)
	def(&c.RetryMax, 10*time.Minute)
	def(&c.MessageTTL, 24*time.Hour)
	def(&c.Poll, time.Second)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.RateBurst <= 0 {
		c.RateBurst = max(1, int(c.RateLimit))
	}
	return c
}

// Observer is told what happens to notifications (metrics).
type Observer interface {
	Queued(platform string, n int)
	Sent(platform string, latency time.Duration)
	Failed(platform, reason string)
	Retried(platform, reason string)
	Removed(platform string, n int)
}

type nopObserver struct{}

func (nopObserver) Queued(string, int)         {}
func (nopObserver) Sent(string, time.Duration) {}
func (nopObserver) Failed(string, string)      {}
func (nopObserver) Retried(string, string)     {}
func (nopObserver) Removed(string, int)        {}

// Options are a Service's collaborators.
type Options struct {
	Store     Store
	Platforms []Platform // the configured platforms; none: push is not configured
	Config    Config
	Notifier  notify.Notifier // nil: this instance's workers only
	Observer  Observer
	Log       *slog.Logger
	Now       func() time.Time
}

// Service registers devices, queues sends and (Run) delivers them.
type Service struct {
	store     Store
	platforms map[string]Platform
	cfg       Config
	notifier  notify.Notifier
	obs       Observer
	log       *slog.Logger
	now       func() time.Time
	wake      chan struct{}
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{
		store:     o.Store,
		platforms: map[string]Platform{},
		cfg:       o.Config.withDefaults(),
		notifier:  o.Notifier,
		obs:       o.Observer,
		log:       o.Log,
		now:       o.Now,
		wake:      make(chan struct{}, 1),
	}
	for _, p := range o.Platforms {
		s.platforms[p.Name()] = p
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Store is the service's store.
func (s *Service) Store() Store { return s.store }

// Configured reports whether any platform is configured (scripts then get the push API).
func (s *Service) Configured() bool { return len(s.platforms) > 0 }

// Platform returns a configured platform.
func (s *Service) Platform(name string) (Platform, bool) {
	p, ok := s.platforms[name]
	return p, ok
}

// Platforms lists the configured platforms' names, sorted.
func (s *Service) Platforms() []string {
	out := make([]string, 0, len(s.platforms))
	for n := range s.platforms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// InputError is a client's mistake (a 400 at the HTTP layer, an error in a script).
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// ForbiddenError is a registration that belongs to another user.
type ForbiddenError struct{ Msg string }

func (e *ForbiddenError) Error() string { return e.Msg }

func inputf(format string, args ...any) error { return &InputError{Msg: fmt.Sprintf(format, args...)} }

// Platform names clients use, to the stored platform.
func normalizePlatform(p string, v2 bool) (string, error) {
	switch strings.ToLower(p) {
	case "apns":
		return APNs, nil
	case "gcm", "fcm":
		if !v2 && strings.ToLower(p) == "fcm" {
			break
		}
		return FCM, nil
	case "wns":
		return WNS, nil
	case "webpush":
		return WebPush, nil
	case "mpns":
		return "", inputf("MPNS was retired by Microsoft in 2019: register Windows devices with wns")
	case "":
		return "", inputf("Creating, updating or listing registrations requires a platform to be provided")
	}
	if v2 {
		return "", inputf("Unsupported push platform %q. Supported push platforms are apns, gcm, fcm, wns and webpush", p)
	}
	return "", inputf("Unsupported push platform specified. Supported push platforms are \"apns,gcm,wns,webpush\"")
}

// MaxChannelLength bounds a device token, channel URI or Web Push subscription.
const MaxChannelLength = 4096

// ValidateChannel checks a device's channel: with the platform's own rules when it is configured,
// else that it is non-empty printable text of bounded length.
func (s *Service) ValidateChannel(platform, channel string) error {
	if channel == "" {
		return inputf("a registration requires a device token or channel")
	}
	if len(channel) > MaxChannelLength || !utf8.ValidString(channel) {
		return inputf("the device token or channel is longer than %d bytes or not UTF-8", MaxChannelLength)
	}
	for _, r := range channel {
		if r < 0x20 || r == 0x7f {
			return inputf("the device token or channel contains a control character")
		}
	}
	if p, ok := s.platforms[platform]; ok {
		if err := p.ValidateChannel(channel); err != nil {
			return inputf("invalid %s device token or channel: %v", platform, err)
		}
	}
	return nil
}

// Caller is who registers: the authenticated user ("" for anonymous) and whether it is an admin.
type Caller struct {
	UserID string
	Admin  bool
	// Auth is the request's caller, for extensions/push.js (nil outside a request).
	Auth *auth.Caller
}

// checkClientTags applies the client tag policy: valid tags, at most MaxTags, the user's own user
// tag only, and only tags matching ClientTags.
func (s *Service) checkClientTags(c Caller, tags []string) error {
	if len(tags) > s.cfg.MaxTags {
		return inputf("too many tags: %d (at most %d)", len(tags), s.cfg.MaxTags)
	}
	for _, t := range tags {
		if err := ValidTag(t); err != nil {
			return &InputError{Msg: err.Error()}
		}
		if c.Admin {
			continue
		}
		if strings.HasPrefix(t, UserTagPrefix) {
			if c.UserID == "" || t != UserTag(c.UserID) {
				return inputf("the tag %q names another user: the server adds the caller's own %s tag", t, UserTagPrefix+"<id>")
			}
			continue
		}
		ok := false
		for _, pat := range s.cfg.ClientTags {
			if m, _ := path.Match(pat, t); m {
				ok = true
				break
			}
		}
		if !ok {
			return inputf("the tag %q is not one a client may set (push.client_tags)", t)
		}
	}
	return nil
}

// finalTags adds the server's tags and checks the total.
func (s *Service) finalTags(c Caller, tags []string, extra ...string) ([]string, error) {
	out := dedupe(append(append([]string(nil), tags...), extra...))
	if c.UserID != "" {
		out = dedupe(append(out, UserTag(c.UserID)))
	}
	for _, t := range out {
		if err := ValidTag(t); err != nil {
			return nil, &InputError{Msg: err.Error()}
		}
	}
	if len(out) > s.cfg.MaxTags {
		return nil, inputf("too many tags: %d with the server's (at most %d)", len(out), s.cfg.MaxTags)
	}
	return out, nil
}

func (s *Service) checkOwner(c Caller, owner string) error {
	if c.Admin || owner == "" || owner == c.UserID {
		return nil
	}
	return &ForbiddenError{Msg: "The registration belongs to another user."}
}

// ---- sends -----------------------------------------------------------------------------------

// Target is who a send reaches: device tokens (channels) directly, registrations matching a tag
// expression, or (All) every registration.
type Target struct {
	Devices []string
	Expr    *Expr
	All     bool
}

// ResolveTarget reads a script's target for a platform ("" for template sends): a string that is a
// valid channel of that platform is a device, any other string a tag expression; in an array,
// channels are devices and the other strings tags (any of them matches); null or undefined (nil)
// reaches everyone.
func (s *Service) ResolveTarget(platform string, v any) (Target, error) {
	switch x := v.(type) {
	case nil:
		return Target{All: true}, nil
	case string:
		if s.isChannel(platform, x) {
			return Target{Devices: []string{x}}, nil
		}
		e, err := ParseExpr(x)
		if err != nil {
			return Target{}, err
		}
		return Target{Expr: e}, nil
	case []string:
		var t Target
		var tags []string
		for _, e := range x {
			if s.isChannel(platform, e) {
				t.Devices = append(t.Devices, e)
			} else {
				tags = append(tags, e)
			}
		}
		if len(tags) > 0 {
			e, err := AnyTag(tags)
			if err != nil {
				return Target{}, err
			}
			t.Expr = e
		}
		if len(t.Devices) == 0 && t.Expr == nil {
			return Target{}, inputf("push: an empty list of targets")
		}
		return t, nil
	}
	return Target{}, inputf("push: the target must be a tag expression, a device token or an array of them")
}

func (s *Service) isChannel(platform, v string) bool {
	if platform == "" {
		return false
	}
	p, ok := s.platforms[platform]
	if !ok || strings.ContainsAny(v, "&|!() ") {
		return false
	}
	return p.ValidateChannel(v) == nil
}

// Native is a platform's own payload for push.<platform>.send.
type Native struct {
	Platform string
	Payload  []byte
	Headers  map[string]string
	Expires  time.Time
}

// SendResult says what a send queued.
type SendResult struct {
	Queued int `json:"queued"`
}

// SendNative queues a native notification to the target's devices and the native registrations of
// its platform that match. ex is the caller's transaction (nil: the service's own).
func (s *Service) SendNative(ctx context.Context, ex Execer, t Target, n Native) (SendResult, error) {
	p, ok := s.platforms[n.Platform]
	if !ok {
		return SendResult{}, inputf("push: %s is not configured", n.Platform)
	}
	if err := p.ValidatePayload(n.Payload, n.Headers); err != nil {
		return SendResult{}, inputf("push: %s payload: %v", n.Platform, err)
	}
	return s.enqueue(ctx, ex, func(emit func(Message) error) error {
		for _, d := range dedupe(t.Devices) {
			if err := s.ValidateChannel(n.Platform, d); err != nil {
				return err
			}
			if err := emit(Message{Platform: n.Platform, Channel: d, Payload: n.Payload, Headers: n.Headers, Expires: n.Expires}); err != nil {
				return err
			}
		}
		if t.Expr == nil && !t.All {
			return nil
		}
		return s.each(ctx, Query{Platform: n.Platform}, t, func(r Registration) error {
			return emit(Message{Platform: r.Platform, Channel: r.Channel, RegistrationID: r.ID, Payload: n.Payload, Headers: n.Headers, Expires: n.Expires})
		})
	})
}

// SendTemplate queues a template send: every template registration matching the target receives its
// template expanded with props.
func (s *Service) SendTemplate(ctx context.Context, ex Execer, t Target, props map[string]string) (SendResult, error) {
	if len(t.Devices) > 0 {
		return SendResult{}, inputf("push.send takes tags, not device tokens")
	}
	return s.enqueue(ctx, ex, func(emit func(Message) error) error {
		return s.each(ctx, Query{Templates: true}, t, func(r Registration) error {
			p, ok := s.platforms[r.Platform]
			if !ok {
				return nil // a device of a platform without credentials: nothing can reach it
			}
			body, headers, err := Expand(r.Platform, Template{Body: r.TemplateBody, Headers: r.Headers}, props)
			if err != nil {
				return inputf("push: template %q: %v", r.TemplateName, err)
			}
			if err := p.ValidatePayload(body, headers); err != nil {
				return inputf("push: template %q expanded for %s: %v", r.TemplateName, r.Platform, err)
			}
			var exp time.Time
			if r.Expiry != "" {
				if e, err := time.Parse(time.RFC3339, r.Expiry); err == nil {
					exp = e
				}
			}
			return emit(Message{Platform: r.Platform, Channel: r.Channel, RegistrationID: r.ID, Payload: body, Headers: headers, Expires: exp})
		})
	})
}

// candidatePage is how many registrations a send reads at a time.
const candidatePage = 500

// each calls fn for every registration of q that the target's expression matches. An expression
// that registrations without any of its tags cannot satisfy is answered tag by tag (a registration
// with several of the tags is taken at the first of them that it has); any other reads everyone.
func (s *Service) each(ctx context.Context, q Query, t Target, fn func(Registration) error) error {
	if t.All || t.Expr == nil || t.Expr.NeedsAll() {
		return s.scan(ctx, q, func(r Registration) error {
			if t.All || t.Expr == nil || t.Expr.MatchTags(r.Tags) {
				return fn(r)
			}
			return nil
		})
	}
	tags := t.Expr.Tags()
	for k, tag := range tags {
		q.Tag = tag
		err := s.scan(ctx, q, func(r Registration) error {
			for _, earlier := range tags[:k] {
				if contains(r.Tags, earlier) {
					return nil // already seen with that tag
				}
			}
			if t.Expr.MatchTags(r.Tags) {
				return fn(r)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// scan pages through the registrations of q.
func (s *Service) scan(ctx context.Context, q Query, fn func(Registration) error) error {
	after := ""
	for {
		rs, err := s.store.Candidates(ctx, q, after, candidatePage)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(rs) < candidatePage {
			return nil
		}
		after = rs[len(rs)-1].ID
	}
}

// enqueue writes what gen emits, in batches, in ex or a transaction of its own, then wakes the
// workers of every instance.
func (s *Service) enqueue(ctx context.Context, ex Execer, gen func(emit func(Message) error) error) (SendResult, error) {
	var own *sql.Tx
	if ex == nil {
		sqlStore, ok := s.store.(*SQLStore)
		if !ok {
			return SendResult{}, errors.New("push: no transaction to enqueue in")
		}
		tx, err := sqlStore.db.BeginTx(ctx, nil)
		if err != nil {
			return SendResult{}, fmt.Errorf("push: begin: %w", err)
		}
		own, ex = tx, tx
		defer func() { _ = own.Rollback() }()
	}
	now := s.now()
	var batch []Message
	total := 0
	counts := map[string]int{}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.store.Enqueue(ctx, ex, batch)
		batch = batch[:0]
		return err
	}
	err := gen(func(m Message) error {
		total++
		if total > s.cfg.MaxFanout {
			return inputf("push: the send reaches more than %d devices (push.max_fanout)", s.cfg.MaxFanout)
		}
		m.ID = newID()
		m.CreatedAt = now
		counts[m.Platform]++
		batch = append(batch, m)
		if len(batch) >= enqueueBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return SendResult{}, err
	}
	if own != nil {
		if err := own.Commit(); err != nil {
			return SendResult{}, fmt.Errorf("push: commit: %w", err)
		}
		s.Wake(ctx)
	}
	for p, n := range counts {
		s.obs.Queued(p, n)
	}
	return SendResult{Queued: total}, nil
}

// Wake tells every instance's workers that messages were queued (callers that enqueued in their own
// transaction call it after commit).
func (s *Service) Wake(ctx context.Context) {
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if s.notifier != nil {
		if err := s.notifier.Publish(ctx, NotifyChannel, "queued"); err != nil {
			s.log.Debug("push: notify", "error", err)
		}
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
