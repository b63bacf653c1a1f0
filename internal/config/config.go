// Package config loads Gatehouse's settings: defaults, then an optional TOML file, then environment
// variables (GATEHOUSE_* names and the original service's MS_* app-setting names), then command-line
// flags. Every setting is described once, in the settings table below, which also produces the
// configuration reference (Reference). An invalid value stops start-up with an error naming the setting
// and where it came from.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the resolved configuration.
type Config struct {
	Listen        string
	MetricsListen string
	DataDir       string
	AppDir        string
	Database      string
	PublicURL     string
	// AutoMigrate lets serve apply pending migrations (other commands never migrate).
	AutoMigrate bool

	MasterKey      string
	ApplicationKey string
	SystemKey      string
	ServiceName    string
	// PreviousMasterKeys are retired master keys given by configuration: they keep verifying tokens
	// until those expire. Remove them after token_max_ttl.
	PreviousMasterKeys []string

	MaxRequestBodyKB     int
	RequestTimeout       time.Duration
	ShutdownTimeout      time.Duration
	CrossDomainWhitelist []string
	SkipVersionCheck     bool
	RequireHTTPS         bool

	PageSize      int
	MaxTop        int
	DynamicSchema bool
	// Table limits (package table, odata and store): issue 10 findings 5, 6 and 15.
	ODataMaxGrowth     int
	ODataMaxComputedKB int
	MaxResponseKB      int
	SQLiteMaxValueKB   int
	MaxColumns         int
	MaxNewColumns      int

	TokenTTL    time.Duration
	TokenMaxTTL time.Duration
	ClockSkew   time.Duration

	LogLevel  string
	LogFormat string

	// Provider signing-key caches (package keyset).
	KeysForcedRefreshInterval time.Duration
	KeysMinRefresh            time.Duration
	KeysMaxRefresh            time.Duration
	KeysMaxStale              time.Duration

	Providers Providers
	// Endpoints are the providers' endpoint overrides and newer settings (file login.go).
	Endpoints ProviderEndpoints
	// Login configures provider login and sessions; OIDC lists generic OpenID providers (login.go).
	Login Login
	OIDC  []OIDCProvider

	// Mail is the SMTP server for account email (package mail).
	Mail Mail
	// Accounts configures built-in email/password accounts (package account).
	Accounts Accounts
	// KeyRing configures the cluster key ring (keyring.go).
	KeyRing KeyRing
	// Tokens selects the issued token format and configures asymmetric tokens (tokens.go).
	Tokens Tokens
	// Scripts configures server scripts (package script).
	Scripts Scripts
	// PushDelivery configures push registrations and delivery (pushdelivery.go).
	PushDelivery PushDelivery
	// Console configures the admin console (console.go).
	Console Console
	// Audit and Activity: the audit trail's retention and the activity log (audit.go).
	Audit    Audit
	Activity Activity

	// Edge, DBPool and Telemetry: proxies and TLS, the database pool, tracing (file ops.go).
	Edge      Edge
	DBPool    DBPool
	Telemetry Telemetry

	// PushProviders holds the push services' credentials (file pushproviders.go).
	PushProviders PushProviders

	// Sources records where each setting's value came from ("default", "file", "env NAME", "flag -x").
	Sources map[string]string
}

// Providers holds identity-provider settings. They are read here so that existing MS_* settings carry
// over; the login package validates them further.
type Providers struct {
	GoogleClientID, GoogleClientSecret, GoogleScope, GoogleAccessType string
	FacebookAppID, FacebookAppSecret, FacebookScope, FacebookDisplay  string
	MicrosoftClientID, MicrosoftClientSecret, MicrosoftPackageSID     string
	MicrosoftScope, MicrosoftDisplay                                  string
	TwitterConsumerKey, TwitterConsumerSecret                         string
	AadClientID                                                       string
	AadTenants                                                        []string
}

// Mail configures outgoing email.
type Mail struct {
	Host, Username, Password, From, TLS string
	Port                                int
	Timeout                             time.Duration
}

// Accounts configures built-in email/password accounts.
type Accounts struct {
	Enabled              bool
	AllowRegistration    bool
	RequireVerifiedEmail bool
	MinPasswordLength    int
	LinkTTL              time.Duration
	ResetURL, VerifyURL  string
	Argon2MemoryKiB      int
	Argon2Time           int
	Argon2Threads        int
	HashConcurrency      int // 0: automatic
	HashQueue            int // 0: automatic
	KeepLegacyHashes     bool
	// Multi-factor sign-in (package account).
	MFAChallengeTTL time.Duration
	SignInURL       string
	SignInTTL       time.Duration
	PasskeyOrigins  []string
}

// Scripts configures the app's server scripts.
type Scripts struct {
	Timeout        time.Duration
	JobTimeout     time.Duration
	MemoryLimitMB  int
	AllocLimitMB   int
	ReloadInterval time.Duration // 0: no hot reload
	// AppSettingsList and JobsList are the raw NAME=value / job=interval lists; validate parses them
	// into AppSettings and Jobs.
	AppSettingsList []string
	JobsList        []string
	HTTPAllowlist   []string // hosts require('request') may call
	AppSettings     map[string]string
	Jobs            map[string]time.Duration

	// mssql.query (docs/security.md)
	SQLRole    string        // PostgreSQL role statements run as ("": the connection's)
	SQLTimeout time.Duration // bound of one statement
}

type kind int

const (
	kString kind = iota
	kSecret      // a string never printed
	kInt
	kDuration
	kBool
	kHostList
	kCSV
	kListenAddr
	kURL
	kCredential // a string never printed, without kSecret's minimum length (third-party passwords)
	kCount      // a non-negative integer; 0 means automatic
	kTemplate   // an absolute http(s) URL containing {token}
)

type setting struct {
	key   string   // TOML key (dotted for sections)
	envs  []string // environment names, first is canonical
	flag  string   // flag name, "" if none (secrets are never flags: argv is visible to every user)
	def   string
	kind  kind
	help  string
	field func(c *Config) any // pointer to the field
}

func settings() []setting {
	// One group per line: each feature's settings live in a file of their own.
	groups := [][]setting{
		baseSettings(),
		loginSettings(),
		keyRingSettings(),
		opsSettings(),
		tokenSettings(),
		pushProviderSettings(),
		pushDeliverySettings(),
		auditSettings(),
		consoleSettings(),
	}
	var all []setting
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

func baseSettings() []setting {
	return []setting{
		{"listen", []string{"GATEHOUSE_LISTEN"}, "listen", "127.0.0.1:8080", kListenAddr, "address the HTTP API listens on", func(c *Config) any { return &c.Listen }},
		{"metrics_listen", []string{"GATEHOUSE_METRICS_LISTEN"}, "metrics-listen", "", kListenAddr, "separate listener for /metrics without authentication (empty: /metrics on the main listener, master key required)", func(c *Config) any { return &c.MetricsListen }},
		{"data", []string{"GATEHOUSE_DATA"}, "data", "./gatehouse-data", kString, "data directory: SQLite database and generated keys (created, mode 0700)", func(c *Config) any { return &c.DataDir }},
		{"app", []string{"GATEHOUSE_APP"}, "app", "", kString, "app directory in the Mobile Services layout (datamodel.json, table/, api/, ...)", func(c *Config) any { return &c.AppDir }},
		{"database", []string{"GATEHOUSE_DATABASE"}, "database", "", kString, "database URL: empty for SQLite in the data directory, sqlite:///path/file.db, or postgres://user@host/db", func(c *Config) any { return &c.Database }},
		{"auto_migrate", []string{"GATEHOUSE_AUTO_MIGRATE"}, "", "true", kBool, "serve applies pending database migrations at start (false: serve refuses a database that is behind; run gatehouse migrate up). Other commands never migrate", func(c *Config) any { return &c.AutoMigrate }},
		{"public_url", []string{"GATEHOUSE_PUBLIC_URL"}, "public-url", "", kURL, "external base URL (https://api.example.com); used for redirects and callbacks instead of the Host header", func(c *Config) any { return &c.PublicURL }},
		{"master_key", []string{"GATEHOUSE_MASTER_KEY", "MS_MasterKey"}, "", "", kSecret, "master key (admin access, token signing); generated into the data directory when unset", func(c *Config) any { return &c.MasterKey }},
		{"application_key", []string{"GATEHOUSE_APPLICATION_KEY", "MS_ApplicationKey"}, "", "", kSecret, "application key (permission \"application\"); generated when unset", func(c *Config) any { return &c.ApplicationKey }},
		{"system_key", []string{"GATEHOUSE_SYSTEM_KEY", "MS_ApplicationSystemKey"}, "", "", kSecret, "system key (signs scheduler tokens); generated when unset", func(c *Config) any { return &c.SystemKey }},
		{"previous_master_keys", []string{"GATEHOUSE_PREVIOUS_MASTER_KEYS"}, "", "", kCSV, "retired master keys (comma separated) whose tokens still verify until they expire; for keys set by configuration", func(c *Config) any { return &c.PreviousMasterKeys }},
		{"service_name", []string{"GATEHOUSE_SERVICE_NAME", "MS_MobileServiceName"}, "", "gatehouse", kString, "service name, as the original's MS_MobileServiceName", func(c *Config) any { return &c.ServiceName }},
		{"max_request_body_kb", []string{"GATEHOUSE_MAX_REQUEST_BODY_KB", "MS_MaxRequestBodySizeKB"}, "", "1024", kInt, "largest request body in KiB (larger: 413)", func(c *Config) any { return &c.MaxRequestBodyKB }},
		{"request_timeout", []string{"GATEHOUSE_REQUEST_TIMEOUT"}, "", "30s", kDuration, "time limit for a request (then 503)", func(c *Config) any { return &c.RequestTimeout }},
		{"shutdown_timeout", []string{"GATEHOUSE_SHUTDOWN_TIMEOUT"}, "", "20s", kDuration, "how long SIGTERM waits for requests in flight", func(c *Config) any { return &c.ShutdownTimeout }},
		{"cross_domain_whitelist", []string{"GATEHOUSE_CROSS_DOMAIN_WHITELIST", "MS_CrossDomainWhitelist"}, "", "localhost", kHostList, "CORS origins by host pattern: JSON [{\"host\":\"*.example.com\"}] or a comma list; * matches [a-z0-9.-]*", func(c *Config) any { return &c.CrossDomainWhitelist }},
		{"skip_version_check", []string{"GATEHOUSE_SKIP_VERSION_CHECK", "MS_SkipVersionCheck"}, "", "false", kBool, "accept any ZUMO-API-VERSION value instead of answering 400", func(c *Config) any { return &c.SkipVersionCheck }},
		{"require_https", []string{"GATEHOUSE_REQUIRE_HTTPS", "MS_RequireHttps"}, "", "false", kBool, "refuse plain-HTTP requests (403); the scheme comes from the TLS connection or a trusted proxy (trusted_proxies)", func(c *Config) any { return &c.RequireHTTPS }},
		{"page_size", []string{"GATEHOUSE_PAGE_SIZE"}, "", "50", kInt, "rows a table read returns when $top is absent (per table: pageSize)", func(c *Config) any { return &c.PageSize }},
		{"max_top", []string{"GATEHOUSE_MAX_TOP"}, "", "1000", kInt, "largest $top accepted (above it: 400; per table: maxTop)", func(c *Config) any { return &c.MaxTop }},
		{"dynamic_schema", []string{"GATEHOUSE_DYNAMIC_SCHEMA", "MS_DynamicSchemaEnabled"}, "", "true", kBool, "add a column when an insert or update brings an unknown property (per table: dynamicSchema)", func(c *Config) any { return &c.DynamicSchema }},
		{"odata_max_growth", []string{"GATEHOUSE_ODATA_MAX_GROWTH"}, "", "32", kInt, "bound on the strings one read's $filter and $orderby compute per row, in multiples of the longest stored value (concat adds, replace multiplies by replacement/pattern length, tolower/toupper count 3); above it: 400 before the query runs", func(c *Config) any { return &c.ODataMaxGrowth }},
		{"odata_max_computed_kb", []string{"GATEHOUSE_ODATA_MAX_COMPUTED_KB"}, "", "1024", kInt, "bound in KiB on the strings one read's functions compute per row from its literals; above it: 400", func(c *Config) any { return &c.ODataMaxComputedKB }},
		{"max_response_kb", []string{"GATEHOUSE_MAX_RESPONSE_KB"}, "", "32768", kInt, "largest table read in KiB (the values of the rows read, and the JSON page); above it: 400 asking for a smaller $top", func(c *Config) any { return &c.MaxResponseKB }},
		{"sqlite_max_value_kb", []string{"GATEHOUSE_SQLITE_MAX_VALUE_KB"}, "", "65536", kInt, "SQLite's SQLITE_LIMIT_LENGTH in KiB: longest string, blob or row any statement may make (400 when exceeded); at least max_request_body_kb", func(c *Config) any { return &c.SQLiteMaxValueKB }},
		{"max_columns", []string{"GATEHOUSE_MAX_COLUMNS"}, "", "500", kInt, "most user columns a table may have (dynamic schema, admin API, app directory; above it: 400)", func(c *Config) any { return &c.MaxColumns }},
		{"max_new_columns", []string{"GATEHOUSE_MAX_NEW_COLUMNS"}, "", "100", kInt, "most columns one insert or update may add through dynamic schema (above it: 400, nothing added)", func(c *Config) any { return &c.MaxNewColumns }},
		{"token_ttl", []string{"GATEHOUSE_TOKEN_TTL"}, "", "720h", kDuration, "lifetime of issued app tokens (the original: 30 days)", func(c *Config) any { return &c.TokenTTL }},
		{"token_max_ttl", []string{"GATEHOUSE_TOKEN_MAX_TTL"}, "", "720h", kDuration, "longest lifetime a minted token may ask for; also how long a retired master key keeps verifying", func(c *Config) any { return &c.TokenMaxTTL }},
		{"clock_skew", []string{"GATEHOUSE_CLOCK_SKEW"}, "", "60s", kDuration, "clock skew allowed on token exp/nbf/iat", func(c *Config) any { return &c.ClockSkew }},
		{"log_level", []string{"GATEHOUSE_LOG_LEVEL"}, "log-level", "info", kString, "debug, info, warn or error", func(c *Config) any { return &c.LogLevel }},
		{"log_format", []string{"GATEHOUSE_LOG_FORMAT"}, "log-format", "json", kString, "json or text", func(c *Config) any { return &c.LogFormat }},

		{"provider_keys.forced_refresh_interval", []string{"GATEHOUSE_KEYS_FORCED_REFRESH_INTERVAL"}, "", "30s", kDuration, "at most one refresh of a provider's keys per this interval triggered by an unknown kid (tokens anyone can send)", func(c *Config) any { return &c.KeysForcedRefreshInterval }},
		{"provider_keys.min_refresh", []string{"GATEHOUSE_KEYS_MIN_REFRESH"}, "", "5m", kDuration, "lower clamp of a provider key set's lifetime from Cache-Control/Expires", func(c *Config) any { return &c.KeysMinRefresh }},
		{"provider_keys.max_refresh", []string{"GATEHOUSE_KEYS_MAX_REFRESH"}, "", "24h", kDuration, "upper clamp of a provider key set's lifetime", func(c *Config) any { return &c.KeysMaxRefresh }},
		{"provider_keys.max_stale", []string{"GATEHOUSE_KEYS_MAX_STALE"}, "", "48h", kDuration, "how long the last good key set keeps verifying while the provider is unreachable; then fail closed", func(c *Config) any { return &c.KeysMaxStale }},
		{"providers.google.client_id", []string{"GATEHOUSE_GOOGLE_CLIENT_ID", "MS_GoogleClientID"}, "", "", kString, "Google OAuth client id", func(c *Config) any { return &c.Providers.GoogleClientID }},
		{"providers.google.client_secret", []string{"GATEHOUSE_GOOGLE_CLIENT_SECRET", "MS_GoogleClientSecret"}, "", "", kSecret, "Google OAuth client secret", func(c *Config) any { return &c.Providers.GoogleClientSecret }},
		{"providers.google.scope", []string{"GATEHOUSE_GOOGLE_SCOPE", "MS_GoogleScope"}, "", "", kString, "extra Google scopes", func(c *Config) any { return &c.Providers.GoogleScope }},
		{"providers.google.access_type", []string{"GATEHOUSE_GOOGLE_ACCESS_TYPE", "MS_GoogleAccessType"}, "", "", kString, "Google access_type (offline for refresh tokens)", func(c *Config) any { return &c.Providers.GoogleAccessType }},
		{"providers.facebook.app_id", []string{"GATEHOUSE_FACEBOOK_APP_ID", "MS_FacebookAppID"}, "", "", kString, "Facebook app id", func(c *Config) any { return &c.Providers.FacebookAppID }},
		{"providers.facebook.app_secret", []string{"GATEHOUSE_FACEBOOK_APP_SECRET", "MS_FacebookAppSecret"}, "", "", kSecret, "Facebook app secret", func(c *Config) any { return &c.Providers.FacebookAppSecret }},
		{"providers.facebook.scope", []string{"GATEHOUSE_FACEBOOK_SCOPE", "MS_FacebookScope"}, "", "", kString, "extra Facebook scopes", func(c *Config) any { return &c.Providers.FacebookScope }},
		{"providers.facebook.display", []string{"GATEHOUSE_FACEBOOK_DISPLAY", "MS_FacebookDisplay"}, "", "", kString, "Facebook dialog display mode", func(c *Config) any { return &c.Providers.FacebookDisplay }},
		{"providers.microsoft.client_id", []string{"GATEHOUSE_MICROSOFT_CLIENT_ID", "MS_MicrosoftClientID"}, "", "", kString, "Microsoft account client id", func(c *Config) any { return &c.Providers.MicrosoftClientID }},
		{"providers.microsoft.client_secret", []string{"GATEHOUSE_MICROSOFT_CLIENT_SECRET", "MS_MicrosoftClientSecret"}, "", "", kSecret, "Microsoft account client secret", func(c *Config) any { return &c.Providers.MicrosoftClientSecret }},
		{"providers.microsoft.package_sid", []string{"GATEHOUSE_MICROSOFT_PACKAGE_SID", "MS_MicrosoftPackageSID"}, "", "", kString, "Windows Store package SID (single sign-on)", func(c *Config) any { return &c.Providers.MicrosoftPackageSID }},
		{"providers.microsoft.scope", []string{"GATEHOUSE_MICROSOFT_SCOPE", "MS_MicrosoftScope"}, "", "", kString, "extra Microsoft scopes", func(c *Config) any { return &c.Providers.MicrosoftScope }},
		{"providers.microsoft.display", []string{"GATEHOUSE_MICROSOFT_DISPLAY", "MS_MicrosoftDisplay"}, "", "", kString, "Microsoft dialog display mode", func(c *Config) any { return &c.Providers.MicrosoftDisplay }},
		{"providers.twitter.consumer_key", []string{"GATEHOUSE_TWITTER_CONSUMER_KEY", "MS_TwitterConsumerKey"}, "", "", kString, "X/Twitter consumer key", func(c *Config) any { return &c.Providers.TwitterConsumerKey }},
		{"providers.twitter.consumer_secret", []string{"GATEHOUSE_TWITTER_CONSUMER_SECRET", "MS_TwitterConsumerSecret"}, "", "", kSecret, "X/Twitter consumer secret", func(c *Config) any { return &c.Providers.TwitterConsumerSecret }},
		{"providers.aad.client_id", []string{"GATEHOUSE_AAD_CLIENT_ID", "MS_AadClientID"}, "", "", kString, "Microsoft Entra ID client id", func(c *Config) any { return &c.Providers.AadClientID }},
		{"providers.aad.tenants", []string{"GATEHOUSE_AAD_TENANTS", "MS_AadTenants"}, "", "", kCSV, "Entra tenant allowlist (comma separated)", func(c *Config) any { return &c.Providers.AadTenants }},
		{"mail.smtp_host", []string{"GATEHOUSE_SMTP_HOST"}, "", "", kString, "SMTP server for account email (empty: email disabled; reset and verification links cannot be sent)", func(c *Config) any { return &c.Mail.Host }},
		{"mail.smtp_port", []string{"GATEHOUSE_SMTP_PORT"}, "", "587", kInt, "SMTP port (587 submission with STARTTLS, 465 with implicit TLS)", func(c *Config) any { return &c.Mail.Port }},
		{"mail.smtp_username", []string{"GATEHOUSE_SMTP_USERNAME"}, "", "", kString, "SMTP AUTH PLAIN user name (empty: no authentication)", func(c *Config) any { return &c.Mail.Username }},
		{"mail.smtp_password", []string{"GATEHOUSE_SMTP_PASSWORD"}, "", "", kCredential, "SMTP AUTH PLAIN password", func(c *Config) any { return &c.Mail.Password }},
		{"mail.smtp_tls", []string{"GATEHOUSE_SMTP_TLS"}, "", "starttls", kString, "starttls (required, never optional), tls (implicit, port 465) or none (loopback relays only when authenticating)", func(c *Config) any { return &c.Mail.TLS }},
		{"mail.from", []string{"GATEHOUSE_MAIL_FROM"}, "", "", kString, "sender address of account email, e.g. Example <no-reply@example.com> (required with mail.smtp_host)", func(c *Config) any { return &c.Mail.From }},
		{"mail.timeout", []string{"GATEHOUSE_MAIL_TIMEOUT"}, "", "30s", kDuration, "time limit for delivering one message (connect, TLS, auth, data)", func(c *Config) any { return &c.Mail.Timeout }},
		{"accounts.enabled", []string{"GATEHOUSE_ACCOUNTS_ENABLED"}, "", "false", kBool, "serve built-in email/password accounts on /login/custom and /.auth/login/custom", func(c *Config) any { return &c.Accounts.Enabled }},
		{"accounts.allow_registration", []string{"GATEHOUSE_ACCOUNTS_ALLOW_REGISTRATION"}, "", "true", kBool, "let anyone register (false: only admins add accounts)", func(c *Config) any { return &c.Accounts.AllowRegistration }},
		{"accounts.require_verified_email", []string{"GATEHOUSE_ACCOUNTS_REQUIRE_VERIFIED_EMAIL"}, "", "false", kBool, "refuse logins (403) until the address is verified by its emailed link", func(c *Config) any { return &c.Accounts.RequireVerifiedEmail }},
		{"accounts.min_password_length", []string{"GATEHOUSE_ACCOUNTS_MIN_PASSWORD_LENGTH"}, "", "8", kInt, "shortest password accepted when one is set, in characters after NFKC (NIST SP 800-63B: 8)", func(c *Config) any { return &c.Accounts.MinPasswordLength }},
		{"accounts.link_ttl", []string{"GATEHOUSE_ACCOUNTS_LINK_TTL"}, "", "30m", kDuration, "lifetime of emailed password-reset and verification links", func(c *Config) any { return &c.Accounts.LinkTTL }},
		{"accounts.reset_url", []string{"GATEHOUSE_ACCOUNTS_RESET_URL"}, "", "", kTemplate, "password-reset link with {token}, e.g. https://app.example.com/reset#token={token} (default: Gatehouse's own form under public_url)", func(c *Config) any { return &c.Accounts.ResetURL }},
		{"accounts.verify_url", []string{"GATEHOUSE_ACCOUNTS_VERIFY_URL"}, "", "", kTemplate, "verification link with {token} (default: Gatehouse's own page under public_url)", func(c *Config) any { return &c.Accounts.VerifyURL }},
		{"accounts.argon2_memory_kib", []string{"GATEHOUSE_ACCOUNTS_ARGON2_MEMORY_KIB"}, "", "19456", kInt, "argon2id memory in KiB (OWASP: 19456 = 19 MiB); hashes with other parameters are upgraded at the next login", func(c *Config) any { return &c.Accounts.Argon2MemoryKiB }},
		{"accounts.argon2_time", []string{"GATEHOUSE_ACCOUNTS_ARGON2_TIME"}, "", "2", kInt, "argon2id passes (OWASP: 2)", func(c *Config) any { return &c.Accounts.Argon2Time }},
		{"accounts.argon2_threads", []string{"GATEHOUSE_ACCOUNTS_ARGON2_THREADS"}, "", "1", kInt, "argon2id parallelism (OWASP: 1)", func(c *Config) any { return &c.Accounts.Argon2Threads }},
		{"accounts.hash_concurrency", []string{"GATEHOUSE_ACCOUNTS_HASH_CONCURRENCY"}, "", "0", kCount, "password hashes computed at once (0: the number of CPUs)", func(c *Config) any { return &c.Accounts.HashConcurrency }},
		{"accounts.hash_queue", []string{"GATEHOUSE_ACCOUNTS_HASH_QUEUE"}, "", "0", kCount, "logins waiting for a hashing slot before 503 + Retry-After (0: 16 per slot)", func(c *Config) any { return &c.Accounts.HashQueue }},
		{"accounts.keep_legacy_hashes", []string{"GATEHOUSE_ACCOUNTS_KEEP_LEGACY_HASHES"}, "", "false", kBool, "keep imported and outdated hashes instead of rehashing them to argon2id at the next login (e.g. while the old system still reads the same rows)", func(c *Config) any { return &c.Accounts.KeepLegacyHashes }},
		{"accounts.mfa_challenge_ttl", []string{"GATEHOUSE_ACCOUNTS_MFA_CHALLENGE_TTL"}, "", "5m", kDuration, "time between a correct first factor (password, emailed link) and the second factor (authenticator code, recovery code, passkey)", func(c *Config) any { return &c.Accounts.MFAChallengeTTL }},
		{"accounts.signin_url", []string{"GATEHOUSE_ACCOUNTS_SIGNIN_URL"}, "", "", kTemplate, "emailed sign-in link with {token}, e.g. https://app.example.com/signin#token={token} (default: Gatehouse's own page under public_url)", func(c *Config) any { return &c.Accounts.SignInURL }},
		{"accounts.signin_ttl", []string{"GATEHOUSE_ACCOUNTS_SIGNIN_TTL"}, "", "10m", kDuration, "lifetime of an emailed sign-in link and code", func(c *Config) any { return &c.Accounts.SignInTTL }},
		{"accounts.passkey_origins", []string{"GATEHOUSE_ACCOUNTS_PASSKEY_ORIGINS"}, "", "", kCSV, "origins besides public_url's whose pages may use passkeys (same registrable domain as public_url's host, the relying party id; passkeys need public_url)", func(c *Config) any { return &c.Accounts.PasskeyOrigins }},
		{"scripts.timeout", []string{"GATEHOUSE_SCRIPT_TIMEOUT"}, "", "10s", kDuration, "time budget of one script invocation (table script, custom API); past it the request fails with 500", func(c *Config) any { return &c.Scripts.Timeout }},
		{"scripts.job_timeout", []string{"GATEHOUSE_SCRIPT_JOB_TIMEOUT"}, "", "10m", kDuration, "time budget of one scheduled job run", func(c *Config) any { return &c.Scripts.JobTimeout }},
		{"scripts.memory_limit_mb", []string{"GATEHOUSE_SCRIPT_MEMORY_LIMIT_MB"}, "", "1024", kInt, "Go heap size (MiB) above which the longest-running script is stopped", func(c *Config) any { return &c.Scripts.MemoryLimitMB }},
		{"scripts.alloc_limit_mb", []string{"GATEHOUSE_SCRIPT_ALLOC_LIMIT_MB"}, "", "64", kInt, "what one invocation may allocate through Buffer and crypto (MiB)", func(c *Config) any { return &c.Scripts.AllocLimitMB }},
		{"scripts.reload_interval", []string{"GATEHOUSE_SCRIPT_RELOAD_INTERVAL"}, "", "2s", kDuration, "how often the app directory is checked for changed scripts (0s: no hot reload)", func(c *Config) any { return &c.Scripts.ReloadInterval }},
		{"scripts.app_settings", []string{"GATEHOUSE_APP_SETTINGS"}, "", "", kCSV, "app settings scripts see in process.env and mobileservice-config appSettings: NAME=value,NAME2=value2", func(c *Config) any { return &c.Scripts.AppSettingsList }},
		{"scripts.http_allowlist", []string{"GATEHOUSE_SCRIPT_HTTP_ALLOWLIST"}, "", "", kCSV, "hosts scripts may call with require('request'): api.example.com,*.example.net; names resolving to loopback/private/reserved addresses are refused unless the address or a CIDR range (10.1.0.0/16) is listed too (empty: no outbound HTTP)", func(c *Config) any { return &c.Scripts.HTTPAllowlist }},
		{"scripts.sql_timeout", []string{"GATEHOUSE_SCRIPT_SQL_TIMEOUT"}, "", "5s", kDuration, "time limit of one mssql.query statement (statement_timeout on PostgreSQL)", func(c *Config) any { return &c.Scripts.SQLTimeout }},
		{"scripts.sql_role", []string{"GATEHOUSE_SCRIPT_SQL_ROLE"}, "", "", kString, "PostgreSQL role mssql.query statements run as (SET LOCAL ROLE; Gatehouse grants it the app's gh_* tables); see docs/security.md", func(c *Config) any { return &c.Scripts.SQLRole }},
		{"scripts.jobs", []string{"GATEHOUSE_JOBS"}, "", "", kCSV, "schedule of scheduler/<job>.js: job=interval,... e.g. cleanup=15m,report=24h", func(c *Config) any { return &c.Scripts.JobsList }},
	}
}

// Error is an invalid setting.
type Error struct {
	Setting string // the name as the user wrote it: file key, env var or flag
	Value   string // "" for secrets
	Reason  string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("invalid setting %s: %s", e.Setting, e.Reason)
	}
	return fmt.Sprintf("invalid setting %s=%q: %s", e.Setting, e.Value, e.Reason)
}

// Flags holds the flags registered on a FlagSet by RegisterFlags.
type Flags struct {
	fs     *flag.FlagSet
	config *string
	values map[string]*string
}

// RegisterFlags adds --config and one flag per flag-able setting to fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, values: map[string]*string{}}
	f.config = fs.String("config", "", "configuration file (TOML); also GATEHOUSE_CONFIG")
	for _, s := range settings() {
		if s.flag == "" {
			continue
		}
		help := s.help
		if s.def != "" {
			help += " (default " + s.def + ")"
		}
		f.values[s.flag] = fs.String(s.flag, "", help)
	}
	return f
}

// Load resolves the configuration. flags may be nil (defaults, file from GATEHOUSE_CONFIG, env).
// getenv is os.Getenv in production and a map lookup in tests.
func Load(flags *Flags, getenv func(string) string) (*Config, error) {
	c := &Config{Sources: map[string]string{}}
	all := settings()
	for _, s := range all {
		if err := apply(c, s, s.def, s.key); err != nil {
			return nil, fmt.Errorf("config: default for %s: %w", s.key, err)
		}
		c.Sources[s.key] = "default"
	}

	path := getenv("GATEHOUSE_CONFIG")
	if flags != nil && *flags.config != "" {
		path = *flags.config
	}
	if path != "" {
		if err := loadFile(c, path, all); err != nil {
			return nil, err
		}
	}

	for _, s := range all {
		// The canonical name wins over the MS_* alias when both are set.
		for _, name := range s.envs {
			if v, ok := lookup(getenv, name); ok {
				if err := apply(c, s, v, name); err != nil {
					return nil, err
				}
				c.Sources[s.key] = "env " + name
				break
			}
		}
	}
	if flags != nil {
		var ferr error
		flags.fs.Visit(func(fl *flag.Flag) {
			for _, s := range all {
				if s.flag == fl.Name && ferr == nil {
					ferr = apply(c, s, *flags.values[s.flag], "--"+s.flag)
					c.Sources[s.key] = "flag --" + s.flag
				}
			}
		})
		if ferr != nil {
			return nil, ferr
		}
	}
	if err := loadOIDCEnv(c, getenv); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func loadFile(c *Config, path string, all []setting) error {
	raw := map[string]any{}
	_, err := toml.DecodeFile(path, &raw)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	byKey := map[string]setting{}
	for _, s := range all {
		byKey[s.key] = s
	}
	flat := map[string]any{}
	flatten("", raw, flat)
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if handled, err := loadOIDCKey(c, path, k, flat[k]); handled {
			if err != nil {
				return err
			}
			continue
		}
		s, ok := byKey[k]
		if !ok {
			return &Error{Setting: path + ": " + k, Reason: "unknown setting"}
		}
		v, err := fileValue(flat[k])
		if err != nil {
			return &Error{Setting: path + ": " + k, Reason: err.Error()}
		}
		if err := apply(c, s, v, path+": "+k); err != nil {
			return err
		}
		c.Sources[s.key] = "file " + path
	}
	return nil
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = v
	}
}

// fileValue turns a TOML value into the string form the env and flags use.
func fileValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", errors.New("list entries must be strings")
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("list entry %q must not contain a comma", s)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("unsupported value type %T", v)
	}
}

func apply(c *Config, s setting, v, source string) error {
	bad := func(reason string) error {
		e := &Error{Setting: source, Value: v, Reason: reason}
		if s.kind == kSecret || s.kind == kCredential {
			e.Value = ""
		}
		return e
	}
	switch p := s.field(c).(type) {
	case *string:
		switch s.kind {
		case kListenAddr:
			if v != "" {
				if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
					return bad("must be host:port, e.g. 127.0.0.1:8080")
				}
			}
		case kURL:
			if v != "" {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
					return bad("must be an absolute http(s) URL with no path, query or fragment")
				}
				v = strings.TrimSuffix(v, "/")
			}
		case kSecret:
			if v != "" && len(v) < 16 {
				return bad("must be at least 16 characters")
			}
		case kTemplate:
			if v != "" {
				u, err := url.Parse(strings.ReplaceAll(v, "{token}", "t"))
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Count(v, "{token}") != 1 {
					return bad("must be an absolute http(s) URL containing {token} once")
				}
			}
		}
		*p = v
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if s.kind == kCount {
			if err != nil || n < 0 {
				return bad("must be a non-negative integer (0: automatic)")
			}
		} else if err != nil || n <= 0 {
			return bad("must be a positive integer")
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			return bad("must be a duration such as 30s, 15m or 720h")
		}
		*p = d
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return bad("must be true or false")
		}
		*p = b
	case *[]string:
		switch s.kind {
		case kHostList:
			hosts, err := ParseHostList(v)
			if err != nil {
				return bad(err.Error())
			}
			*p = hosts
		default:
			*p = splitCSV(v)
		}
	default:
		return fmt.Errorf("config: setting %s has unsupported field type %T", s.key, p)
	}
	return nil
}

func splitCSV(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// ParseHostList reads MS_CrossDomainWhitelist: the original's JSON form [{"host":"..."}] or a comma list.
func ParseHostList(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	var hosts []string
	if strings.HasPrefix(v, "[") {
		var entries []map[string]any
		if err := json.Unmarshal([]byte(v), &entries); err != nil {
			return nil, fmt.Errorf("must be a JSON array of {\"host\": \"pattern\"} objects: %v", err)
		}
		for i, e := range entries {
			h, ok := e["host"].(string)
			if !ok || len(e) != 1 {
				return nil, fmt.Errorf("entry %d must be {\"host\": \"pattern\"}", i)
			}
			hosts = append(hosts, h)
		}
	} else {
		hosts = splitCSV(v)
	}
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, "/:?# ") {
			return nil, fmt.Errorf("host pattern %q must be a host name (no scheme, port or path)", h)
		}
	}
	return hosts, nil
}

func (c *Config) validate() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &Error{Setting: "log_level", Value: c.LogLevel, Reason: "must be debug, info, warn or error"}
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return &Error{Setting: "log_format", Value: c.LogFormat, Reason: "must be json or text"}
	}
	if c.TokenTTL > c.TokenMaxTTL {
		return &Error{Setting: "token_ttl", Value: c.TokenTTL.String(), Reason: "must not exceed token_max_ttl (" + c.TokenMaxTTL.String() + ")"}
	}
	if c.SQLiteMaxValueKB < c.MaxRequestBodyKB || c.SQLiteMaxValueKB > 1<<20 {
		return &Error{Setting: "sqlite_max_value_kb", Value: strconv.Itoa(c.SQLiteMaxValueKB), Reason: "must be at least max_request_body_kb and at most 1048576 (1 GiB, SQLite's maximum)"}
	}
	if c.MaxColumns > 1500 {
		return &Error{Setting: "max_columns", Value: strconv.Itoa(c.MaxColumns), Reason: "must be at most 1500 (PostgreSQL allows 1600 columns, SQLite 2000, with the system columns)"}
	}
	if c.PageSize > c.MaxTop {
		return &Error{Setting: "page_size", Value: strconv.Itoa(c.PageSize), Reason: "must not exceed max_top"}
	}
	if c.KeysMinRefresh <= 0 || c.KeysMinRefresh > c.KeysMaxRefresh {
		return &Error{Setting: "provider_keys.min_refresh", Value: c.KeysMinRefresh.String(), Reason: "must be positive and at most provider_keys.max_refresh"}
	}
	if c.KeysMaxStale < c.KeysMaxRefresh {
		return &Error{Setting: "provider_keys.max_stale", Value: c.KeysMaxStale.String(), Reason: "must be at least provider_keys.max_refresh"}
	}
	if c.RequestTimeout < time.Second {
		return &Error{Setting: "request_timeout", Value: c.RequestTimeout.String(), Reason: "must be at least 1s"}
	}
	if c.Database != "" {
		u, err := url.Parse(c.Database)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql" && u.Scheme != "sqlite") {
			return &Error{Setting: "database", Reason: "must be a postgres:// or sqlite:// URL"}
		}
	}
	if c.Mail.Host != "" && c.Mail.From == "" {
		return &Error{Setting: "mail.from", Reason: "is required when mail.smtp_host is set"}
	}
	switch c.Mail.TLS {
	case "starttls", "tls", "none":
	default:
		return &Error{Setting: "mail.smtp_tls", Value: c.Mail.TLS, Reason: "must be starttls, tls or none"}
	}
	if c.Mail.Port > 65535 {
		return &Error{Setting: "mail.smtp_port", Value: strconv.Itoa(c.Mail.Port), Reason: "must be at most 65535"}
	}
	if c.Accounts.MinPasswordLength > 64 {
		return &Error{Setting: "accounts.min_password_length", Value: strconv.Itoa(c.Accounts.MinPasswordLength), Reason: "must be at most 64"}
	}
	if c.Accounts.LinkTTL < time.Minute || c.Accounts.LinkTTL > 7*24*time.Hour {
		return &Error{Setting: "accounts.link_ttl", Value: c.Accounts.LinkTTL.String(), Reason: "must be between 1m and 168h"}
	}
	if c.Accounts.MFAChallengeTTL < 30*time.Second || c.Accounts.MFAChallengeTTL > time.Hour {
		return &Error{Setting: "accounts.mfa_challenge_ttl", Value: c.Accounts.MFAChallengeTTL.String(), Reason: "must be between 30s and 1h"}
	}
	if c.Accounts.SignInTTL < time.Minute || c.Accounts.SignInTTL > time.Hour {
		return &Error{Setting: "accounts.signin_ttl", Value: c.Accounts.SignInTTL.String(), Reason: "must be between 1m and 1h"}
	}
	for _, o := range c.Accounts.PasskeyOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return &Error{Setting: "accounts.passkey_origins", Value: o, Reason: "must be origins such as https://app.example.com"}
		}
	}
	if c.Accounts.Argon2Threads > 255 {
		return &Error{Setting: "accounts.argon2_threads", Value: strconv.Itoa(c.Accounts.Argon2Threads), Reason: "must be at most 255"}
	}
	if err := c.validateScripts(); err != nil {
		return err
	}
	if err := c.validateTokens(); err != nil {
		return err
	}
	if err := c.validateKeyRing(); err != nil {
		return err
	}
	if err := c.validatePushDelivery(); err != nil {
		return err
	}
	if err := c.validateConsole(); err != nil {
		return err
	}
	if err := c.validateAudit(); err != nil {
		return err
	}
	if err := c.validateLogin(); err != nil {
		return err
	}
	if err := c.validateOps(); err != nil {
		return err
	}
	if err := c.validatePushProviders(); err != nil {
		return err
	}
	if c.MetricsListen != "" && c.MetricsListen == c.Listen {
		return &Error{Setting: "metrics_listen", Value: c.MetricsListen, Reason: "must differ from listen"}
	}
	return nil
}

// sqlRoleRE is a role name that needs no quoting (store.ValidRole checks the same).
var sqlRoleRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func (c *Config) validateScripts() error {
	sc := &c.Scripts
	if sc.Timeout < 10*time.Millisecond {
		return &Error{Setting: "scripts.timeout", Value: sc.Timeout.String(), Reason: "must be at least 10ms"}
	}
	if sc.JobTimeout < time.Second {
		return &Error{Setting: "scripts.job_timeout", Value: sc.JobTimeout.String(), Reason: "must be at least 1s"}
	}
	if sc.MemoryLimitMB < 64 || sc.AllocLimitMB < 1 {
		return &Error{Setting: "scripts.memory_limit_mb", Value: strconv.Itoa(sc.MemoryLimitMB), Reason: "must be at least 64 (and scripts.alloc_limit_mb at least 1)"}
	}
	if sc.ReloadInterval < 0 {
		return &Error{Setting: "scripts.reload_interval", Value: sc.ReloadInterval.String(), Reason: "must not be negative"}
	}
	if sc.SQLTimeout < 10*time.Millisecond {
		return &Error{Setting: "scripts.sql_timeout", Value: sc.SQLTimeout.String(), Reason: "must be at least 10ms"}
	}
	if sc.SQLRole != "" && !sqlRoleRE.MatchString(sc.SQLRole) {
		return &Error{Setting: "scripts.sql_role", Value: sc.SQLRole, Reason: "must be a plain PostgreSQL role name: letters, digits and _, starting with a letter or _, at most 63"}
	}
	sc.AppSettings = map[string]string{}
	for _, kv := range sc.AppSettingsList {
		k, v, ok := strings.Cut(kv, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return &Error{Setting: "scripts.app_settings", Value: kv, Reason: "entries must look like NAME=value"}
		}
		sc.AppSettings[k] = v
	}
	sc.Jobs = map[string]time.Duration{}
	for _, kv := range sc.JobsList {
		k, v, ok := strings.Cut(kv, "=")
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if k = strings.TrimSpace(k); !ok || k == "" || err != nil || d < time.Minute {
			return &Error{Setting: "scripts.jobs", Value: kv, Reason: "entries must look like job=interval with an interval of at least 1m"}
		}
		sc.Jobs[k] = d
	}
	return nil
}

// Reference writes the configuration reference as a Markdown table (kept in sync with docs/configuration.md by a test).
func Reference() string {
	var b strings.Builder
	b.WriteString("| file key | environment | flag | default | meaning |\n|---|---|---|---|---|\n")
	for _, s := range settings() {
		fl := ""
		if s.flag != "" {
			fl = "`--" + s.flag + "`"
		}
		def := s.def
		if def != "" {
			def = "`" + def + "`"
		}
		envs := make([]string, len(s.envs))
		for i, e := range s.envs {
			envs[i] = "`" + e + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", s.key, strings.Join(envs, ", "), fl, def, strings.ReplaceAll(s.help, "|", "\\|"))
	}
	b.WriteString(oidcReference())
	return b.String()
}
