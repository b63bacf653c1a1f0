package table

import (
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/odata"
)

// A page read's statement depends only on the table and the text of the client's query options, so
// it is compiled once and kept (a plan): a repeated read skips the OData compiler and the SQL text
// assembly. A per-user table's restriction to the caller's user id is compiled as a parameter
// (odata.Param) and bound per request, so one plan serves every caller. A plan holds only the
// statement, never a row, so it needs no invalidation by writes on this or any other instance; a
// schema is replaced, never changed, when its columns change (Service.Refresh loads a new one), and the
// key holds the schema, so a plan never selects other columns than the table it was made for.

// planKey identifies a page read: the table, the raw text of its options as the client sent them,
// and what the handler adds to them.
type planKey struct {
	s                    *Schema
	filter, orderBy, sel string
	top, skip            int
	count                bool
	includeDeleted       bool
	perUser              bool // restricted to the caller's user id (bound per request)
}

// plan is a compiled page read.
type plan struct {
	query     string // the page statement (pageQuery)
	args      []any  // its arguments, nil in the place of the caller's user id
	count     string // the $inlinecount statement, "" without it
	countArgs []any
	c         *odata.Compiled
}

// maxPlans bounds a store's plans; when full they are all dropped (the next reads compile again).
const maxPlans = 1024

// planCache holds plans by key. It is read on every page read and written only on a miss.
type planCache struct {
	m sync.Map // planKey -> *plan
	n atomic.Int64
}

func (pc *planCache) get(k planKey) *plan {
	if p, ok := pc.m.Load(k); ok {
		return p.(*plan)
	}
	return nil
}

func (pc *planCache) put(k planKey, p *plan) {
	if pc.n.Add(1) > maxPlans {
		pc.m.Clear()
		pc.n.Store(1)
	}
	pc.m.Store(k, p)
}

// Restrictions a read adds to the client's filter; nodes are immutable and shared.
var (
	notDeleted = odata.Eq(odata.Ident("deleted"), odata.Bool(false))
	ownRows    = odata.Eq(odata.Ident(UserIDColumn), odata.NewParam())
)

// pageRead is a page read as the handler asks for it: the parsed query, whether it is restricted to
// the caller's user id, and its key when it can be kept as a plan (nil: compile it every time).
type pageRead struct {
	q       *odata.Query
	perUser bool
	user    string
	key     *planKey
}

// plan compiles r, or finds it compiled.
func (st *SQL) plan(s *Schema, r pageRead) (*plan, error) {
	if r.key != nil {
		if p := st.plans.get(*r.key); p != nil {
			return p, nil
		}
	}
	q := *r.q
	if !q.IncludeDeleted {
		q.Restrict(notDeleted)
	}
	if r.perUser {
		q.Restrict(ownRows)
	}
	c, err := odata.Compile(&q, s.odata, st.d, 1)
	if err != nil {
		return nil, err
	}
	from := quote(s.SQLName)
	page, args, err := c.SelectSQL(from, allColumns(s))
	if err != nil {
		return nil, err
	}
	// The page statement runs as it is: a read consumed in place stops at whatever step it has
	// reached when its context ends (store.DB.QueryRaw), so SQLite needs no materialized page for
	// the deadline to reach it (pageQuery, which Query still uses).
	p := &plan{query: page, args: args, c: c}
	if c.Count {
		p.count, p.countArgs = c.CountSQL(from)
	}
	if r.key != nil {
		st.plans.put(*r.key, p)
	}
	return p, nil
}

// bind is p's arguments for r.
func (p *plan) bind(r pageRead) ([]any, error) {
	if !r.perUser {
		return p.args, nil
	}
	return p.c.Bind(p.args, r.user)
}

func (p *plan) bindCount(r pageRead) ([]any, error) {
	if !r.perUser {
		return p.countArgs, nil
	}
	return p.c.Bind(p.countArgs, r.user)
}
