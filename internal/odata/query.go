package odata

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// Defaults of Limits.
const (
	DefaultPageSize = 50
	DefaultMaxTop   = 1000
	// NoLimit as Query.Top means no LIMIT clause (programmatic queries only).
	NoLimit = -1
)

// Limits are the per-app paging limits. Zero fields take the defaults.
type Limits struct {
	PageSize int // rows returned when $top is absent (default 50)
	MaxTop   int // largest accepted $top (default 1000); above it → *LimitError
	// Cost bounds the strings $filter and $orderby compute per row (cost.go).
	Cost CostLimits
	// MaxResultBytes bounds the size of the rows one read returns (Query.MaxBytes); 0 = no bound.
	MaxResultBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.PageSize <= 0 {
		l.PageSize = DefaultPageSize
	}
	if l.MaxTop <= 0 {
		l.MaxTop = DefaultMaxTop
	}
	l.PageSize = min(l.PageSize, l.MaxTop)
	return l
}

// Query is a parsed table read. Build one with ParseQuery or directly (table
// scripts); a directly built Query must set Top (NoLimit for no limit).
type Query struct {
	Filter         Expr       // nil: no filter
	OrderBy        []OrderKey // the primary key is always appended when compiling
	Top            int        // rows to return; NoLimit for none
	Skip           int
	Select         []string // client column names; nil or containing "*" = all columns
	InlineCount    bool     // $inlinecount=allpages
	IncludeDeleted bool     // __includeDeleted=true
	// Cost bounds what Filter and OrderBy may compute per row; Compile refuses a query above it with
	// a *LimitError. Zero fields take the defaults (the bound cannot be switched off).
	Cost CostLimits
	// MaxBytes, when positive, bounds the total size of the values of the rows a read returns; the
	// store answers a *LimitError when the rows would exceed it. 0 = no bound.
	MaxBytes int64
}

// Restrict ANDs pred onto the filter. The client's filter stays a separate
// term of the conjunction, so nothing in it (such as a trailing `or true`)
// can widen pred. Use it for per-user tables and soft delete.
func (q *Query) Restrict(pred Expr) { q.Filter = And(pred, q.Filter) }

// ParseQuery reads the OData options from a query string: $filter,
// $orderby, $top, $skip, $select, $inlinecount (case-sensitive names) and
// __includeDeleted (any case). Other parameters are ignored; rejecting
// unknown $/__ names is the handler's job. An option given twice is an
// error. Every error matches ErrBadQuery.
//
// $top absent → limits.PageSize; $top=0 → zero rows (unlike v2, which
// returned a full page; clients send $top=0&$inlinecount=allpages to get
// only the count). __includeDeleted is true only for the value "true" (any
// case); v2 treated any non-empty value, even "false", as true.
func ParseQuery(values url.Values, limits Limits) (*Query, error) {
	limits = limits.withDefaults()
	q := &Query{Top: limits.PageSize, Cost: limits.Cost, MaxBytes: limits.MaxResultBytes}
	get := func(name string) (string, bool, error) {
		v, ok := values[name]
		if !ok || len(v) == 0 {
			return "", false, nil
		}
		if len(v) > 1 {
			return "", false, &OptionError{Option: name, Msg: "specified more than once"}
		}
		return v[0], true, nil
	}
	var err error
	if s, ok, e := get("$filter"); e != nil {
		return nil, e
	} else if ok {
		if q.Filter, err = ParseFilter(s); err != nil {
			return nil, err
		}
	}
	if s, ok, e := get("$orderby"); e != nil {
		return nil, e
	} else if ok {
		if q.OrderBy, err = ParseOrderBy(s); err != nil {
			return nil, err
		}
	}
	if s, ok, e := get("$select"); e != nil {
		return nil, e
	} else if ok {
		if q.Select, err = ParseSelect(s); err != nil {
			return nil, err
		}
	}
	if s, ok, e := get("$top"); e != nil {
		return nil, e
	} else if ok {
		n, err := parseCount("$top", s)
		if err != nil {
			return nil, err
		}
		if n > int64(limits.MaxTop) {
			return nil, &LimitError{Option: "$top", Max: limits.MaxTop}
		}
		q.Top = int(n)
	}
	if s, ok, e := get("$skip"); e != nil {
		return nil, e
	} else if ok {
		n, err := parseCount("$skip", s)
		if err != nil {
			return nil, err
		}
		if n > math.MaxInt32 {
			return nil, &OptionError{Option: "$skip", Msg: fmt.Sprintf("The value of the $skip query option cannot exceed %d.", math.MaxInt32)}
		}
		q.Skip = int(n)
	}
	if s, ok, e := get("$inlinecount"); e != nil {
		return nil, e
	} else if ok {
		switch s {
		case "allpages":
			q.InlineCount = true
		case "none":
		default:
			return nil, &OptionError{Option: "$inlinecount", Msg: "The value specified for inlinecount must be either 'allpages' or 'none'."}
		}
	}
	var deleted []string
	for k, v := range values {
		if strings.EqualFold(k, "__includeDeleted") {
			deleted = append(deleted, v...)
		}
	}
	if len(deleted) > 1 {
		return nil, &OptionError{Option: "__includeDeleted", Msg: "specified more than once"}
	}
	q.IncludeDeleted = len(deleted) == 1 && strings.EqualFold(strings.TrimSpace(deleted[0]), "true")
	return q, nil
}

// parseCount parses a non-negative decimal integer. Values too large for
// int64 are returned as MaxInt64 (so that $top reports the limit).
func parseCount(option, s string) (int64, error) {
	if strings.HasPrefix(s, "-") {
		if _, err := strconv.ParseInt(s, 10, 64); err == nil || isRangeErr(err) {
			return 0, &OptionError{Option: option, Msg: fmt.Sprintf("The value of the %s query option must be greater or equal to 0.", option)}
		}
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, &OptionError{Option: option, Msg: fmt.Sprintf("The value specified for '%s' must be a number.", option)}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return math.MaxInt64, nil
	}
	return n, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}
