package config

import (
	"strconv"
	"strings"
	"time"
)

// Console configures the admin console (package console).
type Console struct {
	Enabled bool
	// Path is where it is served ("/console"), no trailing slash after validation.
	Path             string
	IdleTimeout      time.Duration
	AbsoluteTimeout  time.Duration
	SetupLinkTTL     time.Duration
	InsecureLoopback bool
	MaxUploadKB      int
}

func consoleSettings() []setting {
	return []setting{
		{"console.enabled", []string{"GATEHOUSE_CONSOLE_ENABLED"}, "", "true", kBool, "serve the admin console (web UI for data, schema, scripts, jobs, users, keys, logs, audit)", func(c *Config) any { return &c.Console.Enabled }},
		{"console.path", []string{"GATEHOUSE_CONSOLE_PATH"}, "", "/console", kString, "URL path of the admin console", func(c *Config) any { return &c.Console.Path }},
		{"console.idle_timeout", []string{"GATEHOUSE_CONSOLE_IDLE_TIMEOUT"}, "", "30m", kDuration, "a console session ends after this long without a request", func(c *Config) any { return &c.Console.IdleTimeout }},
		{"console.absolute_timeout", []string{"GATEHOUSE_CONSOLE_ABSOLUTE_TIMEOUT"}, "", "12h", kDuration, "a console session ends this long after sign-in, active or not", func(c *Config) any { return &c.Console.AbsoluteTimeout }},
		{"console.setup_link_ttl", []string{"GATEHOUSE_CONSOLE_SETUP_LINK_TTL"}, "", "1h", kDuration, "lifetime of the one-time setup link printed at start while there is no console administrator", func(c *Config) any { return &c.Console.SetupLinkTTL }},
		{"console.insecure_loopback", []string{"GATEHOUSE_CONSOLE_INSECURE_LOOPBACK"}, "", "true", kBool, "console cookies lack Secure for plain-HTTP requests from a loopback client (local development); false: always Secure", func(c *Config) any { return &c.Console.InsecureLoopback }},
		{"console.max_upload_kb", []string{"GATEHOUSE_CONSOLE_MAX_UPLOAD_KB"}, "", "1024", kInt, "largest CSV/JSON file the console imports rows from, in KiB (max_request_body_kb also applies)", func(c *Config) any { return &c.Console.MaxUploadKB }},
	}
}

func (c *Config) validateConsole() error {
	k := &c.Console
	p := "/" + strings.Trim(k.Path, "/")
	if p == "/" || strings.ContainsAny(p, "?#%\\ ") || strings.Contains(p, "//") {
		return &Error{Setting: "console.path", Value: k.Path, Reason: "must be a path below the root such as /console"}
	}
	for _, reserved := range []string{"/tables", "/api", "/jobs", "/login", "/.auth", "/admin", "/status", "/healthz", "/readyz", "/metrics"} {
		if strings.EqualFold(p, reserved) || strings.HasPrefix(strings.ToLower(p), reserved+"/") {
			return &Error{Setting: "console.path", Value: k.Path, Reason: "is one of Gatehouse's own paths"}
		}
	}
	k.Path = p
	if k.IdleTimeout < time.Minute || k.IdleTimeout > 24*time.Hour {
		return &Error{Setting: "console.idle_timeout", Value: k.IdleTimeout.String(), Reason: "must be between 1m and 24h"}
	}
	if k.AbsoluteTimeout < k.IdleTimeout || k.AbsoluteTimeout > 30*24*time.Hour {
		return &Error{Setting: "console.absolute_timeout", Value: k.AbsoluteTimeout.String(), Reason: "must be between console.idle_timeout and 720h"}
	}
	if k.SetupLinkTTL < time.Minute || k.SetupLinkTTL > 7*24*time.Hour {
		return &Error{Setting: "console.setup_link_ttl", Value: k.SetupLinkTTL.String(), Reason: "must be between 1m and 168h"}
	}
	if k.MaxUploadKB < 1 || k.MaxUploadKB > 1<<20 {
		return &Error{Setting: "console.max_upload_kb", Value: strconv.Itoa(k.MaxUploadKB), Reason: "must be between 1 and 1048576"}
	}
	return nil
}
