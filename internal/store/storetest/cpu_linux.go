//go:build linux

package storetest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BackendCPU is the user and system time of process pid (0: none; a PostgreSQL backend's, from
// pg_backend_pid()), read from /proc/<pid>/stat. It skips the benchmark when that is not readable (the
// server runs elsewhere or as another user).
func BackendCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	if pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Skipf("the PostgreSQL backend's times are not readable here: %v", err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the third on
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// SelfCPU is this process's user and system time (getrusage).
func SelfCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
