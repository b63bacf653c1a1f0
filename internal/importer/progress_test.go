package importer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/progress"
)

func TestProgressOutput(t *testing.T) {
	var b bytes.Buffer
	bar := &Bar{W: &b}
	bar.Start("movies", 4)
	bar.Add("movies", 2)
	bar.Add("movies", 2)
	bar.Done("movies", 4, 1)
	if !strings.Contains(b.String(), "\rmovies               [###############...............] 2/4 rows") ||
		!strings.HasSuffix(b.String(), "[##############################] 4/4 rows  done: 4 rows (1 deleted)\n") {
		t.Fatalf("bar: %q", b.String())
	}
	b.Reset()
	now := time.Unix(0, 0)
	l := &Lines{W: &b, Now: func() time.Time { return now }}
	l.Start("movies", -1)
	l.Add("movies", 10) // within the second: no line
	now = now.Add(2 * time.Second)
	l.Add("movies", 10)
	l.Done("movies", 20, 0)
	if b.String() != "movies: copying\nmovies: 20 rows copied\nmovies: done, 20 rows (0 deleted)\n" {
		t.Fatalf("lines: %q", b.String())
	}
	b.Reset()
	PrintSummary(&b, &Summary{Source: "https://x", Protocol: V1, Rows: 3, Deleted: 1, Duration: 1500 * time.Millisecond,
		Tables: []TableSummary{{Name: "t", IDType: "integer", Rows: 3, Deleted: 1, Created: true, Legacy: true}}})
	if !strings.Contains(b.String(), "imported from https://x (v1): 1 tables, 3 rows (1 deleted) in 1.5s") || !strings.Contains(b.String(), "read in id order") {
		t.Fatalf("summary: %q", b.String())
	}
}

// TestTerminalProgress: the terminal adapter counts rows over every table and names the current one.
func TestTerminalProgress(t *testing.T) {
	now := time.Unix(0, 0)
	var b bytes.Buffer
	line := progress.New(&b, "import", progress.Rows, progress.Options{Terminal: true, Now: func() time.Time { return now }})
	tp := &Terminal{Line: line}
	tp.Start("movies", 10)
	now = now.Add(time.Second)
	tp.Add("movies", 4)
	if got := b.String()[strings.LastIndex(b.String(), "\r"):]; got != "\rimport: 4 rows, 4 rows/s, table movies 4/10, 0 tables done\x1b[K" {
		t.Fatalf("line: %q", got)
	}
	tp.Add("movies", 6)
	tp.Done("movies", 10, 0)
	tp.Start("bulk", -1)
	now = now.Add(time.Second)
	tp.Add("bulk", 10)
	if got := b.String()[strings.LastIndex(b.String(), "\r"):]; got != "\rimport: 20 rows, 10 rows/s, table bulk 10, 1 tables done\x1b[K" {
		t.Fatalf("line: %q", got)
	}
	line.Finish()
	if !strings.HasSuffix(b.String(), "\rimport: 20 rows in 2s (10 rows/s)\x1b[K\n") {
		t.Fatalf("summary: %q", b.String())
	}
}
