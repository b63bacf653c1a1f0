package importer

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/progress"
)

// Bar draws one progress bar per table on a terminal (redrawn in place with \r).
type Bar struct {
	W     io.Writer
	total int64
	done  int64
}

// Start begins a table's bar.
func (b *Bar) Start(table string, total int64) {
	b.total, b.done = total, 0
	b.draw(table)
}

// Add advances the bar.
func (b *Bar) Add(table string, n int) {
	b.done += int64(n)
	b.draw(table)
}

// Done ends the bar's line.
func (b *Bar) Done(table string, rows, deleted int64) {
	b.draw(table)
	fmt.Fprintf(b.W, "  done: %d rows (%d deleted)\n", rows, deleted)
}

func (b *Bar) draw(table string) {
	const width = 30
	if b.total <= 0 {
		fmt.Fprintf(b.W, "\r%-20s %d rows", table, b.done)
		return
	}
	frac := float64(b.done) / float64(b.total)
	if frac > 1 {
		frac = 1
	}
	n := int(frac * width)
	fmt.Fprintf(b.W, "\r%-20s [%s%s] %d/%d rows", table, strings.Repeat("#", n), strings.Repeat(".", width-n), b.done, b.total)
}

// Terminal feeds a progress line (drawn on a terminal only): the rows copied over every table and
// their rate, the table being copied with its own count, and how many tables are done.
type Terminal struct {
	Line    *progress.Line
	current string
	total   int64 // the current table's rows, < 0 when unknown
	done    int64 // the current table's rows copied
	tables  int   // tables done
}

// Start begins a table.
func (t *Terminal) Start(table string, total int64) {
	t.current, t.total, t.done = table, total, 0
	t.Line.SetNote(t.note())
}

// Add counts rows copied.
func (t *Terminal) Add(table string, n int) {
	t.done += int64(n)
	t.Line.AddNote(int64(n), t.note())
}

// Done ends a table.
func (t *Terminal) Done(table string, rows, deleted int64) {
	t.tables++
	t.current = ""
	t.Line.SetNote(t.note())
}

func (t *Terminal) note() string {
	var b strings.Builder
	if t.current != "" {
		fmt.Fprintf(&b, "table %s %s", t.current, progress.Thousands(t.done))
		if t.total >= 0 {
			fmt.Fprintf(&b, "/%s", progress.Thousands(t.total))
		}
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "%d tables done", t.tables)
	return b.String()
}

// Lines prints plain progress lines (not a terminal): one per table start and end, and at most one
// a second in between.
type Lines struct {
	W     io.Writer
	Now   func() time.Time
	total int64
	done  int64
	last  time.Time
}

// Start announces a table.
func (l *Lines) Start(table string, total int64) {
	l.total, l.done, l.last = total, 0, l.now()
	if total >= 0 {
		fmt.Fprintf(l.W, "%s: %d rows to copy\n", table, total)
	} else {
		fmt.Fprintf(l.W, "%s: copying\n", table)
	}
}

// Add notes progress.
func (l *Lines) Add(table string, n int) {
	l.done += int64(n)
	if now := l.now(); now.Sub(l.last) >= time.Second {
		l.last = now
		fmt.Fprintf(l.W, "%s: %d rows copied\n", table, l.done)
	}
}

// Done ends a table.
func (l *Lines) Done(table string, rows, deleted int64) {
	fmt.Fprintf(l.W, "%s: done, %d rows (%d deleted)\n", table, rows, deleted)
}

func (l *Lines) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// PrintSummary writes the end-of-run summary.
func PrintSummary(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "imported from %s (%s): %d tables, %d rows (%d deleted) in %s\n",
		s.Source, s.Protocol, len(s.Tables), s.Rows, s.Deleted, s.Duration.Round(time.Millisecond))
	for _, t := range s.Tables {
		note := ""
		if t.Created {
			note = " (created)"
		}
		if t.SoftDeleted {
			note += " (soft delete on)"
		}
		if t.Legacy {
			note += " (no system columns on the source: read in id order)"
		}
		fmt.Fprintf(w, "  %-20s %-7s %d rows, %d deleted%s\n", t.Name, t.IDType, t.Rows, t.Deleted, note)
	}
}
