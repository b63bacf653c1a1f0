package config

import (
	"strconv"
	"time"
)

// Audit configures the audit trail (package audit).
type Audit struct {
	// RetentionDays deletes entries older than this many days (0: keep them forever, the default).
	RetentionDays int
}

// Activity configures the activity log behind /admin/activity and the console (package activity).
type Activity struct {
	// Enabled records this instance's requests and script output (off: it records nothing; the
	// endpoints still show what other instances recorded).
	Enabled bool
	// Window and MaxEvents bound the shared ring of events; statistics are kept for a day.
	Window    time.Duration
	MaxEvents int
}

func auditSettings() []setting {
	return []setting{
		{"audit.retention_days", []string{"GATEHOUSE_AUDIT_RETENTION_DAYS"}, "", "0", kCount, "delete audit-trail entries older than this many days, checked hourly (0: keep them forever)", func(c *Config) any { return &c.Audit.RetentionDays }},
		{"activity.enabled", []string{"GATEHOUSE_ACTIVITY_ENABLED"}, "", "true", kBool, "record requests (path without query, status, duration, user id) and script console output in the database for /admin/activity and the console (written in batches off the request path)", func(c *Config) any { return &c.Activity.Enabled }},
		{"activity.window", []string{"GATEHOUSE_ACTIVITY_WINDOW"}, "", "1h", kDuration, "how long request and script events are kept (statistics: a day)", func(c *Config) any { return &c.Activity.Window }},
		{"activity.max_events", []string{"GATEHOUSE_ACTIVITY_MAX_EVENTS"}, "", "10000", kInt, "most events kept, cluster-wide (the oldest are pruned every minute)", func(c *Config) any { return &c.Activity.MaxEvents }},
	}
}

func (c *Config) validateAudit() error {
	if c.Audit.RetentionDays > 36500 {
		return &Error{Setting: "audit.retention_days", Value: strconv.Itoa(c.Audit.RetentionDays), Reason: "must be at most 36500 (0 keeps entries forever)"}
	}
	if c.Activity.Window < time.Minute || c.Activity.Window > 24*time.Hour {
		return &Error{Setting: "activity.window", Value: c.Activity.Window.String(), Reason: "must be between 1m and 24h"}
	}
	if c.Activity.MaxEvents < 100 || c.Activity.MaxEvents > 10_000_000 {
		return &Error{Setting: "activity.max_events", Value: strconv.Itoa(c.Activity.MaxEvents), Reason: "must be between 100 and 10000000"}
	}
	return nil
}
