package config

import (
	"path"
	"strconv"
	"time"
)

// PushDelivery configures push registrations and the outbox's delivery (package push); the
// platforms' credentials are separate settings.
type PushDelivery struct {
	MaxTags     int
	ClientTags  []string
	MaxFanout   int
	Concurrency int
	RateLimit   int
	MaxAttempts int
	RetryBase   time.Duration
	RetryMax    time.Duration
	Lease       time.Duration
	SendTimeout time.Duration
	MessageTTL  time.Duration
	Poll        time.Duration
	Deliver     bool
}

func pushDeliverySettings() []setting {
	return []setting{
		{"push.max_tags", []string{"GATEHOUSE_PUSH_MAX_TAGS"}, "", "60", kInt, "most tags one device registration may have, the server's own included (Notification Hubs: 60)", func(c *Config) any { return &c.PushDelivery.MaxTags }},
		{"push.client_tags", []string{"GATEHOUSE_PUSH_CLIENT_TAGS"}, "", "*", kCSV, "patterns of the tags a client may set on its own registrations (* and ? wildcards, comma separated), e.g. topic:*,lang-??; _UserId: tags are never client-settable (the server adds the caller's own)", func(c *Config) any { return &c.PushDelivery.ClientTags }},
		{"push.max_fanout", []string{"GATEHOUSE_PUSH_MAX_FANOUT"}, "", "100000", kInt, "most devices one send may reach (more: the send fails, nothing is queued)", func(c *Config) any { return &c.PushDelivery.MaxFanout }},
		{"push.concurrency", []string{"GATEHOUSE_PUSH_CONCURRENCY"}, "", "16", kInt, "deliveries in flight per platform on each instance", func(c *Config) any { return &c.PushDelivery.Concurrency }},
		{"push.rate_limit", []string{"GATEHOUSE_PUSH_RATE_LIMIT"}, "", "0", kCount, "deliveries per second each instance makes across platforms (0: unlimited)", func(c *Config) any { return &c.PushDelivery.RateLimit }},
		{"push.max_attempts", []string{"GATEHOUSE_PUSH_MAX_ATTEMPTS"}, "", "10", kInt, "delivery attempts of a notification before it is dropped (retryable failures: 429, 5xx, timeouts)", func(c *Config) any { return &c.PushDelivery.MaxAttempts }},
		{"push.retry_base", []string{"GATEHOUSE_PUSH_RETRY_BASE"}, "", "1s", kDuration, "first retry delay; doubled at each attempt (a longer Retry-After from the service wins)", func(c *Config) any { return &c.PushDelivery.RetryBase }},
		{"push.retry_max", []string{"GATEHOUSE_PUSH_RETRY_MAX"}, "", "10m", kDuration, "longest delay between two attempts", func(c *Config) any { return &c.PushDelivery.RetryMax }},
		{"push.lease", []string{"GATEHOUSE_PUSH_LEASE"}, "", "60s", kDuration, "how long a claimed notification is hidden from other instances; a crashed instance's notifications are delivered by another after it", func(c *Config) any { return &c.PushDelivery.Lease }},
		{"push.send_timeout", []string{"GATEHOUSE_PUSH_SEND_TIMEOUT"}, "", "30s", kDuration, "time limit of one delivery to a push service (less than push.lease)", func(c *Config) any { return &c.PushDelivery.SendTimeout }},
		{"push.message_ttl", []string{"GATEHOUSE_PUSH_MESSAGE_TTL"}, "", "24h", kDuration, "a notification not delivered within this long is dropped (counted as expired)", func(c *Config) any { return &c.PushDelivery.MessageTTL }},
		{"push.poll_interval", []string{"GATEHOUSE_PUSH_POLL_INTERVAL"}, "", "1s", kDuration, "how often idle delivery workers look at the outbox (sends wake them at once through change notifications)", func(c *Config) any { return &c.PushDelivery.Poll }},
		{"push.deliver", []string{"GATEHOUSE_PUSH_DELIVER"}, "", "true", kBool, "this instance runs delivery workers (false: it only registers devices and queues sends)", func(c *Config) any { return &c.PushDelivery.Deliver }},
	}
}

func (c *Config) validatePushDelivery() error {
	p := &c.PushDelivery
	ints := []struct {
		key    string
		v      int
		lo, hi int
	}{
		{"push.max_tags", p.MaxTags, 1, 1000},
		{"push.max_fanout", p.MaxFanout, 1, 10_000_000},
		{"push.concurrency", p.Concurrency, 1, 1024},
		{"push.rate_limit", p.RateLimit, 0, 1_000_000},
		{"push.max_attempts", p.MaxAttempts, 1, 100},
	}
	for _, s := range ints {
		if s.v < s.lo || s.v > s.hi {
			return &Error{Setting: s.key, Value: strconv.Itoa(s.v), Reason: "must be from " + strconv.Itoa(s.lo) + " to " + strconv.Itoa(s.hi)}
		}
	}
	for _, pat := range p.ClientTags {
		if _, err := path.Match(pat, ""); err != nil {
			return &Error{Setting: "push.client_tags", Value: pat, Reason: "is not a valid pattern (* and ? wildcards)"}
		}
	}
	if p.RetryBase <= 0 || p.RetryMax < p.RetryBase {
		return &Error{Setting: "push.retry_base", Value: p.RetryBase.String(), Reason: "must be positive and at most push.retry_max"}
	}
	if p.SendTimeout <= 0 || p.Lease < 2*p.SendTimeout {
		return &Error{Setting: "push.lease", Value: p.Lease.String(), Reason: "must be at least twice push.send_timeout"}
	}
	if p.MessageTTL < time.Minute {
		return &Error{Setting: "push.message_ttl", Value: p.MessageTTL.String(), Reason: "must be at least 1m"}
	}
	if p.Poll < 10*time.Millisecond || p.Poll > time.Minute {
		return &Error{Setting: "push.poll_interval", Value: p.Poll.String(), Reason: "must be between 10ms and 1m"}
	}
	return nil
}
