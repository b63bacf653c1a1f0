// Package progress draws one progress line for a long command-line operation (rows copied, bytes
// written): redrawn in place on a terminal at most ten times a second, with the rate, and ended by a
// summary line. When the output is not a terminal it writes nothing at all, so scripts and CI logs
// see exactly the command's usual output.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultInterval is the shortest time between two redraws (10 a second).
const DefaultInterval = 100 * time.Millisecond

// Unit says how the counts are printed.
type Unit int

const (
	// Rows counts items ("1,234 rows").
	Rows Unit = iota
	// Bytes counts bytes ("12.3 MB").
	Bytes
)

// Options configure a Line.
type Options struct {
	Terminal bool             // the writer is a terminal; false: the Line writes nothing
	Now      func() time.Time // nil: time.Now
	Interval time.Duration    // shortest time between redraws; 0: DefaultInterval
}

// Line is one progress line. Its methods may be called from several goroutines.
type Line struct {
	w        io.Writer
	on       bool
	now      func() time.Time
	interval time.Duration

	mu     sync.Mutex
	label  string
	unit   Unit
	done   int64
	total  int64 // ≤ 0: unknown
	note   string
	start  time.Time
	last   time.Time
	drawn  bool
	redraw int // redraws so far (tests read it through Redraws)
}

// New returns a Line writing to w.
func New(w io.Writer, label string, unit Unit, o Options) *Line {
	l := &Line{w: w, on: o.Terminal && w != nil, now: o.Now, interval: o.Interval, label: label, unit: unit}
	if l.now == nil {
		l.now = time.Now
	}
	if l.interval <= 0 {
		l.interval = DefaultInterval
	}
	l.start = l.now()
	return l
}

// Enabled reports whether the Line draws anything.
func (l *Line) Enabled() bool { return l != nil && l.on }

// SetTotal sets the expected count (≤ 0: unknown).
func (l *Line) SetTotal(total int64) {
	if !l.Enabled() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total = total
	l.maybeDraw()
}

// SetNote sets the text after the count, e.g. "table todoitem, 2 tables done".
func (l *Line) SetNote(note string) {
	if !l.Enabled() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.note = note
	l.maybeDraw()
}

// Add advances the count by n.
func (l *Line) Add(n int64) {
	if !l.Enabled() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done += n
	l.maybeDraw()
}

// AddNote advances the count by n and sets the note in one update (one redraw at most).
func (l *Line) AddNote(n int64, note string) {
	if !l.Enabled() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done += n
	l.note = note
	l.maybeDraw()
}

// Finish replaces the line with a summary line (count, time, average rate) ended by a newline.
func (l *Line) Finish() {
	if !l.Enabled() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.now().Sub(l.start)
	fmt.Fprintf(l.w, "\r%s: %s in %s (%s)\x1b[K\n", l.label, l.count(l.done), el.Round(time.Millisecond), l.rate(el))
	l.drawn = false
}

// Redraws is how many times the line was drawn (not counting Finish).
func (l *Line) Redraws() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.redraw
}

// Writer returns w counting what passes through it into the Line.
func (l *Line) Writer(w io.Writer) io.Writer { return countingWriter{w, l} }

// Reader returns r counting what is read through it into the Line.
func (l *Line) Reader(r io.Reader) io.Reader { return countingReader{r, l} }

type countingWriter struct {
	w io.Writer
	l *Line
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.l.Add(int64(n))
	return n, err
}

type countingReader struct {
	r io.Reader
	l *Line
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.l.Add(int64(n))
	return n, err
}

func (l *Line) maybeDraw() {
	now := l.now()
	if l.drawn && now.Sub(l.last) < l.interval {
		return
	}
	l.last, l.drawn = now, true
	l.redraw++
	count := l.count(l.done)
	if l.total > 0 {
		count = fmt.Sprintf("%s / %s (%d%%)", count, l.count(l.total), min(100, l.done*100/l.total))
	}
	note := ""
	if l.note != "" {
		note = ", " + l.note
	}
	fmt.Fprintf(l.w, "\r%s: %s, %s%s\x1b[K", l.label, count, l.rate(now.Sub(l.start)), note)
}

func (l *Line) count(n int64) string {
	if l.unit == Bytes {
		return Size(n)
	}
	return Thousands(n) + " rows"
}

func (l *Line) rate(el time.Duration) string {
	if el < time.Millisecond {
		return "– /s"
	}
	per := int64(float64(l.done) / el.Seconds())
	if l.unit == Bytes {
		return Size(per) + "/s"
	}
	return Thousands(per) + " rows/s"
}

// Size prints a byte count in decimal units: 999 B, 1.5 kB, 12.3 MB, 4.0 GB.
func Size(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n)/1000, []string{"kB", "MB", "GB", "TB", "PB"}
	i := 0
	for f >= 999.95 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// Thousands prints n with comma separators: 1,234,567.
func Thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
