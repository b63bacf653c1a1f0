// Command accounts is the login load test of the built-in accounts (issue 6): it builds and starts a
// real `gatehouse serve` with accounts enabled, imports N accounts whose hashes are argon2id at the
// default parameters (or bcrypt cost 10 with -scheme bcrypt, kept as bcrypt), then runs C concurrent
// clients that log in for a fixed duration. It prints logins/s, p50/p99 latency of successful logins,
// the count of each status, and the server's peak RSS (VmHWM). Clients honour Retry-After on 429/503
// (as a well-behaved SDK does); any status other than 200, 429 and 503 is a failure.
//
//	go run ./bench/accounts -c 64 -d 20s
//	go run ./bench/accounts -c 500 -d 20s
//	go run ./bench/accounts -c 64 -d 20s -scheme bcrypt
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

const benchPassword = "correct horse battery staple"

func main() {
	clients := flag.Int("c", 64, "concurrent clients")
	dur := flag.Duration("d", 20*time.Second, "measurement duration")
	n := flag.Int("n", 1000, "accounts")
	scheme := flag.String("scheme", "argon2id", "argon2id (default parameters) or bcrypt (cost 10, kept as bcrypt)")
	queue := flag.Int("queue", 0, "accounts.hash_queue (0: the default, 16 per CPU)")
	flag.Parse()
	if err := run(*clients, *dur, *n, *scheme, *queue); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func hashFor(scheme string) (string, error) {
	if scheme == "bcrypt" {
		b, err := bcrypt.GenerateFromPassword([]byte(benchPassword), 10)
		return string(b), err
	}
	salt := make([]byte, 16)
	rand.Read(salt) //nolint:errcheck
	key := argon2.IDKey([]byte(benchPassword), salt, 2, 19456, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s$%s", enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

func run(clients int, dur time.Duration, n int, scheme string, queue int) error {
	tmp, err := os.MkdirTemp("", "gh-bench-accounts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "gatehouse")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	addr, err := freePort()
	if err != nil {
		return err
	}
	master := "bench-master-key-0123456789abcdef"
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", filepath.Join(tmp, "data"), "--log-level", "error")
	cmd.Env = append(os.Environ(), "GATEHOUSE_ACCOUNTS_ENABLED=true", "GATEHOUSE_MASTER_KEY="+master,
		"GATEHOUSE_APPLICATION_KEY=bench-application-key-0123456789", "GATEHOUSE_SYSTEM_KEY=bench-system-key-0123456789abcd",
		"GATEHOUSE_ACCOUNTS_KEEP_LEGACY_HASHES="+strconv.FormatBool(scheme == "bcrypt"),
		"GATEHOUSE_ACCOUNTS_HASH_QUEUE="+strconv.Itoa(queue), "GATEHOUSE_MAX_REQUEST_BODY_KB=65536")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }() //nolint:errcheck
	base := "http://" + addr
	for i := 0; ; i++ {
		if res, err := http.Get(base + "/status"); err == nil {
			res.Body.Close()
			break
		}
		if i > 400 {
			return fmt.Errorf("server did not start")
		}
		time.Sleep(25 * time.Millisecond)
	}

	// Seed: one JSON import of n accounts sharing one precomputed hash (each row is its own account).
	h, err := hashFor(scheme)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"email":"user%d@bench.example.com","hash":%q}`, i, h)
	}
	buf.WriteByte(']')
	req, _ := http.NewRequest("POST", base+"/admin/accounts/import", &buf)
	req.Header.Set("X-ZUMO-MASTER", master)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	var sum struct{ Created, Errors int }
	json.NewDecoder(res.Body).Decode(&sum) //nolint:errcheck
	res.Body.Close()
	if sum.Created != n {
		return fmt.Errorf("import created %d of %d (status %d)", sum.Created, n, res.StatusCode)
	}

	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var statuses sync.Map // status → *atomic.Int64
	var transportErrs atomic.Int64
	count := func(st int) {
		v, _ := statuses.LoadOrStore(st, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; ctx.Err() == nil; i += clients {
				body := fmt.Sprintf(`{"email":"user%d@bench.example.com","password":%q}`, i%n, benchPassword)
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/login/custom", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				res, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						transportErrs.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, res.Body) //nolint:errcheck
				res.Body.Close()
				d := time.Since(t0)
				count(res.StatusCode)
				switch res.StatusCode {
				case http.StatusOK:
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				case http.StatusTooManyRequests, http.StatusServiceUnavailable:
					ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(max(ra, 1)) * time.Second):
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	hwm := vmHWM(cmd.Process.Pid)

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	fmt.Printf("scheme=%s clients=%d duration=%s accounts=%d GOMAXPROCS(server)=default\n", scheme, clients, dur, n)
	fmt.Printf("logins/s=%.1f  p50=%s  p99=%s  (successful logins: %d)\n", float64(len(lat))/elapsed.Seconds(), pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), len(lat))
	var codes []string
	failed := transportErrs.Load()
	statuses.Range(func(k, v any) bool {
		st := k.(int)
		codes = append(codes, fmt.Sprintf("%d:%d", st, v.(*atomic.Int64).Load()))
		if st != 200 && st != 429 && st != 503 {
			failed += v.(*atomic.Int64).Load()
		}
		return true
	})
	sort.Strings(codes)
	fmt.Printf("statuses %s  transport errors %d  failures (other than 429/503) %d\n", strings.Join(codes, " "), transportErrs.Load(), failed)
	fmt.Printf("server peak RSS (VmHWM) = %s\n", hwm)
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

func vmHWM(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "n/a"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "n/a"
}
