package console

import (
	"context"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
)

// storeActivity reads package activity's cluster-wide events and aggregates.
type storeActivity struct{ st *activity.Store }

// NewActivity is the Logs page's reader of package activity's store.
func NewActivity(st *activity.Store) Activity { return storeActivity{st: st} }

// filter maps the console's filter onto the store's (a script's source without ".js", which selects
// script events).
func (a storeActivity) filter(f EventFilter) activity.Filter {
	af := activity.Filter{Status: f.Status, Route: f.Route, User: f.UserID, RequestID: f.RequestID, Kind: activity.Kind(f.Kind),
		Source: strings.TrimSuffix(f.Source, ".js"), AfterID: f.AfterID, Limit: f.Limit}
	if af.Source != "" {
		af.Kind = activity.KindScript
	}
	return af
}

func eventOf(e activity.Event) Event {
	return Event{ID: e.ID, Time: e.Time, Instance: e.Instance, Kind: string(e.Kind), RequestID: e.RequestID,
		Method: e.Method, Route: e.Route, Path: e.Path, Status: e.Status, Duration: e.Duration, UserID: e.UserID,
		Level: e.Level, Source: e.Source, Message: e.Message}
}

func (a storeActivity) Tail(ctx context.Context, f EventFilter) ([]Event, error) {
	list, err := a.st.Tail(ctx, a.filter(f))
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(list))
	// Newest first for the page.
	for i := len(list) - 1; i >= 0; i-- {
		out = append(out, eventOf(list[i]))
	}
	return out, nil
}

// Follower follows the events table from after (activity.Store.Follow: every instance's events, once).
func (a storeActivity) Follower(f EventFilter, after int64) Follower {
	return &storeFollower{st: a.st, f: a.filter(f), cur: activity.NewCursor(after)}
}

type storeFollower struct {
	st  *activity.Store
	f   activity.Filter
	cur *activity.Cursor
}

func (c *storeFollower) Next(ctx context.Context) ([]Event, bool, error) {
	list, more, err := c.st.Follow(ctx, c.f, c.cur, time.Now())
	if err != nil {
		return nil, false, err
	}
	out := make([]Event, 0, len(list))
	for _, e := range list {
		out = append(out, eventOf(e))
	}
	return out, more, nil
}

func (a storeActivity) Stats(ctx context.Context, window time.Duration) (Stats, error) {
	now := time.Now()
	s, err := a.st.Stats(ctx, now.Add(-window), now)
	if err != nil {
		return Stats{}, err
	}
	out := Stats{Window: window, Requests: s.Requests, PerSecond: s.RequestsPerSecond, P99: s.P99}
	if s.Requests > 0 {
		out.ErrorRate = 100 * float64(s.Errors5xx) / float64(s.Requests)
		out.ClientErrors = 100 * float64(s.Errors4xx) / float64(s.Requests)
	}
	for _, m := range s.Minutes {
		out.Minutes = append(out.Minutes, Minute{Start: m.Start, Requests: m.Requests, Errors: m.Errors4xx + m.Errors5xx, P99: m.P99})
	}
	for _, in := range s.Instances {
		out.Instances = append(out.Instances, Instance{ID: in.ID, LastSeen: in.LastSeen, Requests: in.Requests})
	}
	return out, nil
}
