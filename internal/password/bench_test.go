package password

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Benchmarks run through the Hasher (and so the Limiter) as a login does.
//
//	go test -run '^$' -bench . -benchmem ./internal/password/

func benchHasher(b *testing.B) *Hasher {
	b.Helper()
	h, err := NewHasher(Config{})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkArgon2idDefault: one verification at the OWASP default
// parameters (m=19 MiB, t=2, p=1) — the cost of every login.
func BenchmarkArgon2idDefault(b *testing.B) {
	h := benchHasher(b)
	ctx := context.Background()
	stored, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := h.Verify(ctx, stored, "correct horse battery staple"); err != nil || !res.Match {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkArgon2idDefaultParallel: throughput with GOMAXPROCS concurrent
// logins under the default limiter.
func BenchmarkArgon2idDefaultParallel(b *testing.B) {
	h := benchHasher(b)
	ctx := context.Background()
	stored, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Verify(ctx, stored, "correct horse battery staple"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBcrypt10: verification of a bcrypt cost-10 hash, for comparison.
func BenchmarkBcrypt10(b *testing.B) {
	h := benchHasher(b)
	ctx := context.Background()
	raw, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), 10)
	if err != nil {
		b.Fatal(err)
	}
	stored := string(raw)
	b.ReportAllocs()
	for b.Loop() {
		if res, err := h.Verify(ctx, stored, "correct horse battery staple"); err != nil || !res.Match {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkVerifyClassicPBKDF2: the classic Mobile Services format
// (PBKDF2-SHA1, 1000 iterations, 32 bytes).
func BenchmarkVerifyClassicPBKDF2(b *testing.B) {
	h := benchHasher(b)
	ctx := context.Background()
	c := loadVectors(b).ZumoClassic[0]
	stored, err := FromImport(ImportRecord{HashFormat: "zumo", Hash: c.Hash, Salt: c.Salt})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := h.Verify(ctx, stored, c.Password); err != nil || !res.Match {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkUpgradeClassicPBKDF2: a first login on a classic row — verify
// plus the argon2id rehash, in one limiter slot.
func BenchmarkUpgradeClassicPBKDF2(b *testing.B) {
	h := benchHasher(b)
	ctx := context.Background()
	c := loadVectors(b).ZumoClassic[0]
	stored, err := FromImport(ImportRecord{HashFormat: "zumo", Hash: c.Hash, Salt: c.Salt})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if res, err := h.VerifyAndUpgrade(ctx, stored, c.Password); err != nil || res.NewHash == "" {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkDummyVerify: the unknown-account path; should match
// BenchmarkArgon2idDefault.
func BenchmarkDummyVerify(b *testing.B) {
	h := benchHasher(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := h.DummyVerify(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginFlood500: 500 simultaneous logins at the default parameters
// against the default limiter (GOMAXPROCS slots, 16 waiters per slot). Each
// op is one flood; it reports how many attempts got ErrBusy (the handler's
// 503/429) and the memory the Go runtime obtained from the OS (MemStats.Sys,
// an upper bound for the heap part of RSS) after all floods.
func BenchmarkLoginFlood500(b *testing.B) {
	const clients = 500
	h := benchHasher(b)
	ctx := context.Background()
	stored, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	var busy, other atomic.Int64
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := h.Verify(ctx, stored, "correct horse battery staple")
				switch {
				case errors.Is(err, ErrBusy):
					busy.Add(1)
				case err != nil:
					other.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
	}
	if other.Load() != 0 {
		b.Fatalf("%d attempts failed with an error other than ErrBusy", other.Load())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(busy.Load())/float64(b.N), "busy/op")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
}
