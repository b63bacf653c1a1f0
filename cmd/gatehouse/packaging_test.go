package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The machine running the tests has no container runtime, so the packaging is checked here: the
// Dockerfile's stages and the binary its build line produces (static, with a working health check),
// the compose file's references, and the systemd unit's hardening.

type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func knownEnv(t *testing.T, name string) {
	t.Helper()
	if !strings.Contains(config.Reference(), "`"+name+"`") {
		t.Errorf("%s is not a Gatehouse setting", name)
	}
}

func TestDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a static binary")
	}
	root, _ := filepath.Abs("../..")
	ins := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	var stages []string
	var buildLine, user, healthcheck, entrypoint, copyBinary string
	env := map[string]string{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			if len(f) != 3 || !strings.EqualFold(f[1], "AS") {
				t.Fatalf("every stage is named: FROM %s", in.args)
			}
			stages = append(stages, f[2])
		case "RUN":
			if strings.Contains(in.args, "go build") {
				buildLine = in.args
			}
		case "USER":
			user = in.args
		case "HEALTHCHECK":
			healthcheck = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		case "COPY":
			if m := regexp.MustCompile(`^--from=(\S+) (\S+) (\S+)$`).FindStringSubmatch(in.args); m != nil && strings.HasSuffix(m[3], "/gatehouse") {
				if m[1] != stages[0] {
					t.Errorf("binary copied from stage %s, not the build stage %s", m[1], stages[0])
				}
				copyBinary = m[2] + " " + m[3]
			}
		}
	}
	if len(stages) < 2 {
		t.Fatalf("not multi-stage: %v", stages)
	}
	if !strings.Contains(buildLine, "CGO_ENABLED=0") || !strings.Contains(buildLine, "-o /out/gatehouse") {
		t.Fatalf("build line: %q", buildLine)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Fatalf("runs as %q", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || len(ep) != 1 {
		t.Fatalf("ENTRYPOINT must be exec form: %q", entrypoint)
	}
	if copyBinary != "/out/gatehouse "+ep[0] {
		t.Fatalf("the binary copied (%q) is not the entrypoint %s", copyBinary, ep[0])
	}
	hc := regexp.MustCompile(`CMD (\[.*\])$`).FindStringSubmatch(healthcheck)
	var hcArgs []string
	if hc == nil || json.Unmarshal([]byte(hc[1]), &hcArgs) != nil || hcArgs[0] != ep[0] || hcArgs[1] != "healthcheck" {
		t.Fatalf("HEALTHCHECK must run the binary's own healthcheck: %q", healthcheck)
	}
	for k := range env {
		knownEnv(t, k)
	}

	// Build exactly as the Dockerfile does (output path and version substituted).
	bin := filepath.Join(t.TempDir(), "gatehouse")
	line := strings.ReplaceAll(strings.ReplaceAll(buildLine, "-o /out/gatehouse", "-o "+bin), "${VERSION}", "packaging-test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "sh", "-c", line)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has an ELF interpreter: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary links %v", libs)
	}
	f.Close()
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.Contains(string(out), "packaging-test") {
		t.Fatalf("version: %s %v", out, err)
	}

	// Run it as the container would (its ENV, a fresh data directory) and probe it with the
	// HEALTHCHECK command.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	runEnv := os.Environ()
	for k, v := range env {
		runEnv = append(runEnv, k+"="+v)
	}
	runEnv = append(runEnv, "GATEHOUSE_DATA="+filepath.Join(t.TempDir(), "data"), "GATEHOUSE_LISTEN=0.0.0.0:"+strconv.Itoa(port))
	probe := func(args ...string) error {
		c := exec.Command(bin, append([]string{"healthcheck"}, args...)...)
		c.Env = runEnv
		return c.Run()
	}
	if err := probe(); err == nil {
		t.Fatal("healthcheck passed with nothing listening")
	}
	srv := exec.Command(bin, "serve")
	srv.Env = runEnv
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }() //nolint:errcheck
	deadline := time.Now().Add(20 * time.Second)
	for probe() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed: %s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := probe("--ready"); err != nil {
		t.Fatalf("readiness: %v", err)
	}
}

func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Image       string            `yaml:"image"`
			DependsOn   any               `yaml:"depends_on"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Networks    []string          `yaml:"networks"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
		Networks map[string]struct {
			Ipam struct {
				Config []struct {
					Subnet string `yaml:"subnet"`
				} `yaml:"config"`
			} `yaml:"ipam"`
		} `yaml:"networks"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "gatehouse1", "gatehouse2", "caddy"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("service %s missing", name)
		}
	}
	proxyNet := c.Networks["proxy"].Ipam.Config
	if len(proxyNet) != 1 {
		t.Fatal("the proxy network needs a fixed subnet (trusted_proxies names it)")
	}
	subnet := netip.MustParsePrefix(proxyNet[0].Subnet)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("../../deploy", src)); err != nil {
					t.Errorf("%s mounts missing file %s", name, src)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s uses undeclared volume %s", name, src)
			}
		}
		for _, n := range s.Networks {
			if _, ok := c.Networks[n]; !ok {
				t.Errorf("%s uses undeclared network %s", name, n)
			}
		}
		var deps []string
		switch d := s.DependsOn.(type) {
		case []any:
			for _, x := range d {
				deps = append(deps, x.(string))
			}
		case map[string]any:
			for k := range d {
				deps = append(deps, k)
			}
		}
		for _, d := range deps {
			if _, ok := c.Services[d]; !ok {
				t.Errorf("%s depends on unknown service %s", name, d)
			}
		}
	}
	for _, name := range []string{"gatehouse1", "gatehouse2"} {
		s := c.Services[name]
		build, _ := s.Build.(map[string]any)
		if build == nil {
			t.Fatalf("%s is not built from the Dockerfile", name)
		}
		if _, err := os.Stat(filepath.Join("../../deploy", build["context"].(string), build["dockerfile"].(string))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for k := range s.Environment {
			if strings.HasPrefix(k, "GATEHOUSE_") {
				knownEnv(t, k)
			}
		}
		tp := s.Environment["GATEHOUSE_TRUSTED_PROXIES"]
		if p, err := netip.ParsePrefix(tp); err != nil || p != subnet {
			t.Errorf("%s trusts %q, not the proxy network %s", name, tp, subnet)
		}
		if !strings.Contains(s.Environment["GATEHOUSE_DATABASE"], "@postgres:5432/") {
			t.Errorf("%s database: %s", name, s.Environment["GATEHOUSE_DATABASE"])
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s publishes ports: only the proxy should", name)
		}
		// The configuration the instance gets is valid.
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = regexp.MustCompile(`\$\{([A-Z_]+)(:[-?][^}]*)?\}`).ReplaceAllStringFunc(v, func(string) string { return "0123456789abcdef0123456789abcdef" })
		}
		if _, err := config.Load(nil, func(k string) string { return env[k] }); err != nil {
			t.Errorf("%s configuration: %v", name, err)
		}
	}
	// Caddy balances over both instances on their listen port and checks /readyz.
	caddy, err := os.ReadFile("../../deploy/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(c.Services["gatehouse1"].Environment["GATEHOUSE_LISTEN"])
	for _, want := range []string{"reverse_proxy gatehouse1:" + port + " gatehouse2:" + port, "health_uri /readyz"} {
		if !strings.Contains(string(caddy), want) {
			t.Errorf("Caddyfile lacks %q", want)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("../../deploy/gatehouse.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			unit[section] = map[string][]string{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("bad line %q", line)
		}
		unit[section][k] = append(unit[section][k], v)
	}
	svc := unit["Service"]
	want := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "DynamicUser": "yes", "StateDirectory": "gatehouse", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "ProtectKernelTunables": "yes",
		"ProtectKernelModules": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "ReadWritePaths": "/var/lib/gatehouse",
		"Environment": "GATEHOUSE_DATA=/var/lib/gatehouse", "KillSignal": "SIGTERM",
	}
	for k, v := range want {
		if got := svc[k]; len(got) == 0 || got[0] != v {
			t.Errorf("%s=%v, want %s", k, got, v)
		}
	}
	if len(svc["ExecStart"]) != 1 || !strings.HasPrefix(svc["ExecStart"][0], "/usr/local/bin/gatehouse serve") {
		t.Errorf("ExecStart %v", svc["ExecStart"])
	}
	if len(unit["Install"]["WantedBy"]) == 0 {
		t.Error("no [Install] WantedBy")
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed: syntax and exposure not checked")
		return
	}
	// systemd's own checks: the unit verifies (with an existing binary), and its exposure score
	// stays "OK" (≤ 1.6 of 10 today).
	dir := t.TempDir()
	body, _ := os.ReadFile("../../deploy/gatehouse.service")
	verify := filepath.Join(dir, "gatehouse.service")
	os.WriteFile(verify, bytes.ReplaceAll(body, []byte("/usr/local/bin/gatehouse"), []byte("/bin/true")), 0o644) //nolint:errcheck
	if out, err := exec.Command("systemd-analyze", "verify", verify).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--threshold=20", verify).CombinedOutput()
	if err != nil {
		t.Errorf("exposure above 2.0: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for \S+: (\S+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd exposure level: %s", m[1])
	}
}
