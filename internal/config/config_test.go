package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "./gatehouse-data" || c.MaxRequestBodyKB != 1024 ||
		c.RequestTimeout != 30*time.Second || len(c.CrossDomainWhitelist) != 1 || c.CrossDomainWhitelist[0] != "localhost" ||
		c.TokenTTL != 720*time.Hour || c.Sources["listen"] != "default" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gh.toml")
	os.WriteFile(file, []byte(`
listen = "127.0.0.1:7000"
data = "/from/file"
max_request_body_kb = 10
cross_domain_whitelist = ["a.example.com", "*.b.example.com"]
[providers.google]
client_id = "file-google"
`), 0o600)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fl := RegisterFlags(fs)
	if err := fs.Parse([]string{"--config", file, "--listen", "127.0.0.1:9000"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fl, envOf(map[string]string{
		"GATEHOUSE_DATA":          "/from/env",
		"MS_MaxRequestBodySizeKB": "20",
		"MS_MasterKey":            "ms-master-key-0123456789",
		"GATEHOUSE_MASTER_KEY":    "canonical-master-key-012345",
		"MS_SkipVersionCheck":     "true",
		"MS_GoogleClientID":       "env-google",
		"MS_AadTenants":           "a.onmicrosoft.com, b.onmicrosoft.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"listen (flag over file)", c.Listen, "127.0.0.1:9000"},
		{"data (env over file)", c.DataDir, "/from/env"},
		{"master (canonical env over MS_ alias)", c.MasterKey, "canonical-master-key-012345"},
		{"google (alias env over file)", c.Providers.GoogleClientID, "env-google"},
		{"whitelist (file)", strings.Join(c.CrossDomainWhitelist, ","), "a.example.com,*.b.example.com"},
		{"tenants", strings.Join(c.Providers.AadTenants, ","), "a.onmicrosoft.com,b.onmicrosoft.com"},
		{"source", c.Sources["listen"], "flag --listen"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.MaxRequestBodyKB != 20 || !c.SkipVersionCheck {
		t.Errorf("env aliases not applied: %+v", c)
	}
}

func TestInvalidSettingsNameTheSetting(t *testing.T) {
	cases := []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"MS_MaxRequestBodySizeKB": "lots"}, "MS_MaxRequestBodySizeKB"},
		{map[string]string{"MS_MaxRequestBodySizeKB": "-1"}, "MS_MaxRequestBodySizeKB"},
		{map[string]string{"MS_SkipVersionCheck": "maybe"}, "MS_SkipVersionCheck"},
		{map[string]string{"MS_CrossDomainWhitelist": `[{"hots":"x"}]`}, "MS_CrossDomainWhitelist"},
		{map[string]string{"MS_CrossDomainWhitelist": `[{"host":"http://x"}]`}, "MS_CrossDomainWhitelist"},
		{map[string]string{"MS_CrossDomainWhitelist": `[not json`}, "MS_CrossDomainWhitelist"},
		{map[string]string{"GATEHOUSE_LISTEN": "8080"}, "GATEHOUSE_LISTEN"},
		{map[string]string{"GATEHOUSE_REQUEST_TIMEOUT": "soon"}, "GATEHOUSE_REQUEST_TIMEOUT"},
		{map[string]string{"MS_MasterKey": "short"}, "MS_MasterKey"},
		{map[string]string{"GATEHOUSE_PUBLIC_URL": "ftp://x"}, "GATEHOUSE_PUBLIC_URL"},
		{map[string]string{"GATEHOUSE_LOG_LEVEL": "loud"}, "log_level"},
		{map[string]string{"GATEHOUSE_TOKEN_TTL": "1000h"}, "token_ttl"},
		{map[string]string{"GATEHOUSE_DATABASE": "mysql://x"}, "database"},
		{map[string]string{"GATEHOUSE_SQLITE_MAX_VALUE_KB": "512"}, "sqlite_max_value_kb"},
		{map[string]string{"GATEHOUSE_MAX_COLUMNS": "2000"}, "max_columns"},
		{map[string]string{"GATEHOUSE_ODATA_MAX_GROWTH": "0"}, "GATEHOUSE_ODATA_MAX_GROWTH"},
		{map[string]string{"GATEHOUSE_MAX_NEW_COLUMNS": "-5"}, "GATEHOUSE_MAX_NEW_COLUMNS"},
		{map[string]string{"GATEHOUSE_ACCOUNTS_MFA_CHALLENGE_TTL": "5s"}, "accounts.mfa_challenge_ttl"},
		{map[string]string{"GATEHOUSE_ACCOUNTS_SIGNIN_TTL": "2h"}, "accounts.signin_ttl"},
		{map[string]string{"GATEHOUSE_ACCOUNTS_SIGNIN_URL": "https://app.example.com/signin"}, "GATEHOUSE_ACCOUNTS_SIGNIN_URL"},
		{map[string]string{"GATEHOUSE_ACCOUNTS_PASSKEY_ORIGINS": "https://app.example.com/path"}, "accounts.passkey_origins"},
	}
	for _, tc := range cases {
		_, err := Load(nil, envOf(tc.env))
		var ce *Error
		if !errors.As(err, &ce) || ce.Setting != tc.name {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.name)
		}
	}
	// A secret's value is never echoed.
	_, err := Load(nil, envOf(map[string]string{"MS_MasterKey": "short"}))
	if strings.Contains(err.Error(), "short") {
		t.Errorf("secret echoed: %v", err)
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown key": "lisen = \"x:1\"\n",
		"bad type":    "max_request_body_kb = \"x\"\n",
		"bad toml":    "listen = \n",
		"float":       "max_request_body_kb = 1.5\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".toml")
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := Load(nil, envOf(map[string]string{"GATEHOUSE_CONFIG": p})); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v should name the file", name, err)
		}
	}
	if _, err := Load(nil, envOf(map[string]string{"GATEHOUSE_CONFIG": filepath.Join(dir, "missing.toml")})); err == nil {
		t.Error("missing config file accepted")
	}
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load(nil, envOf(map[string]string{"GATEHOUSE_CONFIG": "../../gatehouse.example.toml"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen == "" {
		t.Fatal("example config empty")
	}
}

func TestParseHostList(t *testing.T) {
	hosts, err := ParseHostList(`[{"host":"*.example.com"},{"host":"null"}]`)
	if err != nil || len(hosts) != 2 || hosts[1] != "null" {
		t.Fatalf("%v %v", hosts, err)
	}
	hosts, err = ParseHostList("a.com, b.com")
	if err != nil || len(hosts) != 2 {
		t.Fatalf("%v %v", hosts, err)
	}
}

func TestReferenceListsEverySetting(t *testing.T) {
	ref := Reference()
	for _, s := range settings() {
		if !strings.Contains(ref, "`"+s.key+"`") {
			t.Errorf("reference lacks %s", s.key)
		}
	}
}

// TestReadmeReference keeps the configuration reference in docs/configuration.md identical to the
// settings table.
// Regenerate with: GATEHOUSE_UPDATE_README=1 go test ./internal/config -run TestReadmeReference
// referenceDoc is the page holding the generated configuration reference.
const referenceDoc = "../../docs/configuration.md"

func TestReadmeReference(t *testing.T) {
	const begin, end = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"
	b, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal(referenceDoc + " lacks the config-reference markers")
	}
	want := s[:i+len(begin)] + Reference() + s[j:]
	if want == s {
		return
	}
	if os.Getenv("GATEHOUSE_UPDATE_README") != "" {
		if err := os.WriteFile(referenceDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal(referenceDoc + " configuration reference is stale; run: GATEHOUSE_UPDATE_README=1 go test ./internal/config -run TestReadmeReference")
}
