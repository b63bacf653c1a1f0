package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// exportPage is how many entries Export reads per query.
const exportPage = 500

// CSVHeader is the first line of a CSV export.
var CSVHeader = []string{"id", "time", "actor", "via", "action", "target", "remote", "request_id", "before", "after"}

// Export writes the entries f selects, oldest first, as JSON lines (one Entry object a line) or CSV
// (CSVHeader, then one row an entry; before and after as JSON text). It pages through the trail by
// id, so a large export holds no long transaction; f.Limit, when set, caps the number of entries.
func (s *Store) Export(ctx context.Context, w io.Writer, f Filter, format Format) (int, error) {
	bw := bufio.NewWriter(w)
	var write func(Entry) error
	switch format {
	case JSONLines:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(e Entry) error { return enc.Encode(e) }
	case CSV:
		cw := csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return 0, err
		}
		write = func(e Entry) error {
			if err := cw.Write(CSVRecord(e)); err != nil {
				return err
			}
			cw.Flush()
			return cw.Error()
		}
	default:
		return 0, fmt.Errorf("audit: unknown export format %q", format)
	}
	limit := f.Limit
	f.Ascending = true
	n := 0
	for {
		f.Limit = exportPage
		if limit > 0 && limit-n < exportPage {
			f.Limit = limit - n
		}
		if f.Limit <= 0 {
			break
		}
		got := 0
		err := s.scan(ctx, f, func(e Entry) error {
			got++
			n++
			f.AfterID = e.ID
			return write(e)
		})
		if err != nil {
			return n, err
		}
		if got < f.Limit {
			break
		}
	}
	return n, bw.Flush()
}

// CSVRecord is an entry as a CSV row (CSVHeader's columns). Cells that a spreadsheet would take for
// a formula (starting with = + - @, tab or CR) are prefixed with a quote, so that an exported trail
// opened in a spreadsheet runs nothing an attacker put into a target or an actor.
func CSVRecord(e Entry) []string {
	return []string{strconv.FormatInt(e.ID, 10), e.Time.UTC().Format(time.RFC3339Nano), cell(e.Actor), cell(e.Via), cell(e.Action),
		cell(e.Target), cell(e.Remote), cell(e.RequestID), cell(string(e.Before)), cell(string(e.After))}
}

func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
