package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// TestNotTerminal: nothing is written, whatever is called, and wrapped streams pass data unchanged.
func TestNotTerminal(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, "import", Rows, Options{Terminal: false})
	l.SetTotal(10)
	l.SetNote("x")
	l.Add(5)
	l.AddNote(1, "y")
	l.Finish()
	var dst bytes.Buffer
	if _, err := io.Copy(l.Writer(&dst), l.Reader(strings.NewReader("payload"))); err != nil || dst.String() != "payload" {
		t.Fatalf("copy: %v %q", err, dst.String())
	}
	if out.Len() != 0 || l.Enabled() {
		t.Fatalf("wrote %q", out.String())
	}
	var nilLine *Line
	nilLine.Add(1) // a nil Line is a disabled one
}

// TestRateLimited: at most one redraw per interval however often Add is called; the line shows the
// count, total, percentage, rate and note; Finish ends it with a summary line.
func TestRateLimited(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	l := New(&out, "import", Rows, Options{Terminal: true, Now: c.now})
	l.SetTotal(10000)
	if l.Redraws() != 1 {
		t.Fatalf("first update not drawn: %d", l.Redraws())
	}
	// 2 seconds of calls every millisecond: ≤ 10 redraws a second.
	for i := 0; i < 2000; i++ {
		c.advance(time.Millisecond)
		l.Add(2)
	}
	if n := l.Redraws(); n < 19 || n > 21 {
		t.Fatalf("%d redraws in 2s", n)
	}
	c.advance(DefaultInterval)
	l.AddNote(0, "table todoitem, 1 table done")
	last := out.String()[strings.LastIndex(out.String(), "\r"):]
	if want := "\rimport: 4,000 rows / 10,000 rows (40%), 1,904 rows/s, table todoitem, 1 table done\x1b[K"; last != want {
		t.Fatalf("line %q, want %q", last, want)
	}
	l.Finish()
	if !strings.HasSuffix(out.String(), "\rimport: 4,000 rows in 2.1s (1,904 rows/s)\x1b[K\n") {
		t.Fatalf("summary: %q", out.String()[strings.LastIndex(out.String(), "\r"):])
	}
}

// TestBytes: a counting writer and reader feed a byte line.
func TestBytes(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	var out bytes.Buffer
	l := New(&out, "backup", Bytes, Options{Terminal: true, Now: c.now})
	var dst bytes.Buffer
	c.advance(time.Second)
	if _, err := io.Copy(l.Writer(&dst), strings.NewReader(strings.Repeat("x", 1500))); err != nil || dst.Len() != 1500 {
		t.Fatal(err)
	}
	l.Finish()
	if !strings.HasSuffix(out.String(), "backup: 1.5 kB in 1s (1.5 kB/s)\x1b[K\n") {
		t.Fatalf("%q", out.String())
	}
	r := New(&out, "restore", Bytes, Options{Terminal: true, Now: c.now})
	if b, _ := io.ReadAll(r.Reader(strings.NewReader("abc"))); string(b) != "abc" {
		t.Fatal("reader changed the data")
	}
	if r.done != 3 {
		t.Fatalf("counted %d", r.done)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 1500: "1.5 kB", 12_345_678: "12.3 MB", 999_999_999: "1.0 GB", 4e12: "4.0 TB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 12: "12", 1234: "1,234", 1234567: "1,234,567", -1234: "-1,234", 100000: "100,000"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
