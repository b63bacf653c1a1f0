package activity

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxTail bounds one read of the events table (Tail's Limit and a Follow step).
const maxTail = 1000

// Follow bounds.
const (
	// HoleTTL is how long Follow keeps looking for an id below its position that was not visible yet.
	// Ids are allocated when a batch is inserted and become visible when its transaction commits, so
	// an instance's batch may appear after a later id of another instance's; a rolled-back batch
	// leaves a hole for good.
	HoleTTL = 10 * time.Second
	// maxHoles bounds the ids a Cursor waits for (the oldest are given up first).
	maxHoles = 2048
)

// Cursor is a live tail's position in the events table: the highest id read and the ids below it
// that were not visible yet when it passed them. The zero Cursor starts after the newest event.
type Cursor struct {
	After   int64
	started bool
	holes   map[int64]time.Time // id → when it was first missed
}

// NewCursor starts after the given id (a client's Last-Event-ID; 0: after the newest event).
func NewCursor(after int64) *Cursor { return &Cursor{After: max(after, 0), started: after > 0} }

// Follow returns the events f selects that became visible since the cursor's last step, oldest
// first (events that committed late come first), and moves the cursor. f.AfterID and f.Limit are
// ignored. more is true when a step stopped at its bound (maxTail ids): call again at once.
//
// Every event of every instance is returned once: an id skipped because its batch had not committed
// yet is re-checked at each step for HoleTTL.
func (s *Store) Follow(ctx context.Context, f Filter, cur *Cursor, now time.Time) (events []Event, more bool, err error) {
	if !cur.started {
		if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM gatehouse_activity`).Scan(&cur.After); err != nil {
			return nil, false, fmt.Errorf("activity: follow: %w", err)
		}
		cur.started = true
		return nil, false, nil
	}
	if cur.holes == nil {
		cur.holes = map[int64]time.Time{}
	}
	for id, t := range cur.holes {
		if now.Sub(t) > HoleTTL {
			delete(cur.holes, id)
		}
	}
	// The ids that appeared: above the position, and the awaited holes that are filled now.
	cond := "id > " + strconv.FormatInt(cur.After, 10)
	if len(cur.holes) > 0 {
		cond = "(" + cond + " OR id IN (" + idList(cur.holes) + "))"
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT id FROM gatehouse_activity WHERE %s ORDER BY id LIMIT %d`, cond, maxTail+len(cur.holes)))
	if err != nil {
		return nil, false, fmt.Errorf("activity: follow: %w", err)
	}
	var fresh, filled []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("activity: follow: %w", err)
		}
		if id > cur.After {
			fresh = append(fresh, id)
		} else {
			filled = append(filled, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("activity: follow: %w", err)
	}
	if len(fresh) > maxTail {
		fresh = fresh[:maxTail]
	}
	if len(fresh) == 0 && len(filled) == 0 {
		return nil, false, nil
	}
	// Read the events f selects among exactly those ids (a range and the filled holes).
	from, to := cur.After, cur.After
	if len(fresh) > 0 {
		to = fresh[len(fresh)-1]
	}
	parts := []string{}
	if to > from {
		parts = append(parts, fmt.Sprintf("(id > %d AND id <= %d)", from, to))
	}
	if len(filled) > 0 {
		set := make(map[int64]time.Time, len(filled))
		for _, id := range filled {
			set[id] = time.Time{}
		}
		parts = append(parts, "id IN ("+idList(set)+")")
	}
	// The read is bounded by the ids found: at most maxTail + maxHoles rows.
	f.AfterID, f.Limit = 0, max(1, len(fresh)+len(filled))
	events, err = s.tail(ctx, f, "("+strings.Join(parts, " OR ")+")")
	if err != nil {
		return nil, false, err
	}
	for _, id := range filled {
		delete(cur.holes, id)
	}
	// New holes: ids between the position and the newest visible one that are not visible.
	// Only the maxHoles ids below the newest are candidates: a position far behind (a stale
	// Last-Event-ID, pruned events) does not make every missing id a hole.
	prev := cur.After
	for _, id := range fresh {
		for h := max(prev+1, to-maxHoles); h < id; h++ {
			cur.holes[h] = now
		}
		prev = id
	}
	if len(cur.holes) > maxHoles {
		ids := make([]int64, 0, len(cur.holes))
		for id := range cur.holes {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids[:len(ids)-maxHoles] {
			delete(cur.holes, id)
		}
	}
	cur.After = to
	// Late events first, then the new ones, each in id order (tail orders by id).
	if len(filled) > 0 {
		sort.SliceStable(events, func(i, j int) bool {
			li, lj := events[i].ID <= from, events[j].ID <= from
			return li && !lj
		})
	}
	return events, len(fresh) == maxTail, nil
}

// Holes is how many ids below the position the cursor still waits for.
func (c *Cursor) Holes() int { return len(c.holes) }

func idList(ids map[int64]time.Time) string {
	var b strings.Builder
	first := true
	for id := range ids {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}
