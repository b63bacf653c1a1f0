// Package odata parses the OData v3 query options sent by Mobile Services
// clients ($filter, $orderby, $top, $skip, $select, $inlinecount,
// __includeDeleted) into an AST and compiles them to parameterized SQL for
// SQLite (modernc.org/sqlite) and PostgreSQL (pgx).
//
// # Use
//
//	q, err := odata.ParseQuery(r.URL.Query(), odata.Limits{PageSize: 50, MaxTop: 1000})
//	if errors.Is(err, odata.ErrBadQuery) { /* 400 with err.Error() */ }
//	if table.PerUser { q.Restrict(odata.Eq(odata.Ident("userId"), odata.Str(user.ID))) }
//	if table.SoftDelete && !q.IncludeDeleted { q.Restrict(odata.Eq(odata.Ident("deleted"), odata.Bool(false))) }
//	c, err := odata.Compile(q, schema, odata.Postgres{}, 1)
//	stmt, args, err := c.SelectSQL(quotedTable, columns)   // page
//	count, cargs := c.CountSQL(quotedTable)                // when c.Count
//
// Every error caused by client input matches ErrBadQuery (errors.Is) and is
// one of *SyntaxError (with the 0-based character position), *TypeError,
// *UnknownColumnError, *LimitError ($top above the maximum: "You cannot
// request more than 1000 records") or *OptionError. No value from the
// request is ever written into SQL text: literals are bound parameters,
// identifiers come from the Schema and are always quoted by this package,
// and function/operator spellings come from fixed tables.
//
// # Storage conventions (what the store must create)
//
// A Schema maps client-visible names (case-insensitively) to a Column with
// the stored identifier and a Type:
//
//	Type       SQLite                          PostgreSQL
//	String     TEXT (BINARY collation)         text (deterministic collation)
//	Number     REAL                            double precision
//	Integer    INTEGER (numeric ids)           bigint or integer
//	Boolean    INTEGER 0/1                     boolean
//	Date       INTEGER ms since epoch, UTC     timestamptz(3)
//
// SQLite needs a collation and two functions registered before connections
// are opened: SQLite{}.Register() registers "gatehouse_unicode"
// (UnicodeCollation, x/text/collate root) and "gatehouse_lower" /
// "gatehouse_upper" (Go's Unicode case mapping). PostgreSQL uses the ICU
// collation "und-x-icu" (Postgres.Collation overrides it; check
// pg_collation) and lower()/upper(), which follow the database's LC_CTYPE
// (C.UTF-8 or another UTF-8 locale agrees with Go).
//
// # Semantics (identical on both databases; tested against both)
//
//   - Grammar: precedence, high to low: not and unary -, mul div mod, add
//     sub, eq ne gt ge lt le, and, or; parentheses. Operators, asc/desc,
//     function names and the datetime/datetimeoffset/guid prefixes match in
//     any case (they are unambiguous by position); true, false, null and not
//     are lower-case only as in v1, so other spellings are member names.
//     Member access (a/b, v1 silently used b) and '-' inside identifiers are
//     rejected. Chains of and/or are kept flat and compiled as balanced
//     trees, so a filter with thousands of "id eq '…' or" terms works.
//   - Literals: 'text' (a quote inside is written twice); numbers with optional fraction,
//     exponent and L/M/D/F suffix all become float64 (an integral literal
//     compared with an Integer column is bound as int64); true/false;
//     null; datetime'…' and datetimeoffset'…' (YYYY-MM-DD[THH:MM[:SS[.f]]]
//     [Z|±HH:MM], no zone = UTC); guid'…' (a string). A string literal
//     compared with a Date (or passed to year() …) is parsed as a date.
//   - null: x eq null is IS NULL, ne null IS NOT NULL; every other use
//     follows SQL three-valued logic (ne excludes NULL rows).
//   - Types are checked: comparing a String with a Number, arithmetic on
//     strings, a non-Boolean filter … are *TypeError (400).
//   - Arithmetic is on doubles: div is floating-point division; mod is
//     a - b*trunc(a/b) (sign of the dividend, like SQL Server's %), computed
//     by the same formula on both databases; division or mod by zero yields
//     NULL. PostgreSQL raises errors (SQLSTATE 22003) on floating-point
//     overflow or underflow where SQLite yields ±Inf or 0; the store should
//     map data exceptions (SQLSTATE class 22) raised while running a
//     compiled query to 400.
//   - round is half away from zero (exactly, also for 0.49999999999999994),
//     floor, ceiling as usual.
//   - Strings: comparisons and functions are case-sensitive and exact
//     (no LIKE, so % and _ in values are plain characters). indexof and
//     substring are 0-based; indexof returns -1 when not found; substring
//     start and length are truncated to integers and clamped to
//     [0, 2^30-1]. substringof(needle, haystack) keeps the OData argument
//     order. concat takes two arguments. replace cannot be nested and its
//     third argument must be a string literal of at most 100 characters
//     (as in v1), which bounds how much one call can grow a value.
//   - Dates: year … second are computed in UTC; second is the integer
//     second (fractions dropped), also before 1970.
//   - Ordering: string keys, and lt/le/gt/ge between strings, use the
//     Unicode collation ("Amélie" < "American Beauty" < "apple" < "Apple");
//     eq/ne stay exact. NULLs sort first ascending and last descending (SQL
//     Server's order). The primary key is always appended ascending as the
//     final key (unless already present) so that $skip paging is stable.
//   - $top absent: Limits.PageSize; $top=0 returns no rows (v2 returned a
//     full page; clients use $top=0&$inlinecount=allpages for counts);
//     $top above Limits.MaxTop is a *LimitError. __includeDeleted is true
//     only for "true" in any case (v2 also treated "false" as true).
//   - Bounds: $filter/$orderby at most MaxFilterLength bytes, trees at most
//     MaxDepth deep, at most MaxParams bound values. The strings a query's
//     functions compute per row are bounded by a static cost model
//     (CostLimits, cost.go): growth relative to the longest stored value and
//     bytes made from literals; a query above it is a *LimitError before it
//     runs. Query.MaxBytes bounds the size of a read's rows (enforced by the
//     store).
package odata
