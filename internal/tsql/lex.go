// Package tsql translates the T-SQL that classic Mobile Services scripts send through mssql.query into
// SQLite or PostgreSQL. It parses a statement into a syntax tree, resolves every identifier against
// the app's catalogue (tables, their columns, the system columns and the aliases the statement's own
// FROM clauses introduce), admits functions from an allowlist only, and prints SQL that names
// physical tables and columns alone. Anything it does not understand is refused with the construct
// named: the translator never passes text through.
//
// The parser is written here rather than taken from a library because resolving names the way
// Gatehouse must (a quoted or bracketed name is only a name; nothing reaches the output unresolved)
// is the whole point, and general SQL parsers keep unknown names and functions as they are.
package tsql

import (
	"fmt"
	"strings"
)

// Error is a statement the translator refuses; the message names the construct.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error {
	return &Error{Msg: "mssql: " + fmt.Sprintf(format, args...)}
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tQuoted
	tString
	tNumber
	tParam
	tOp
)

type token struct {
	kind tokKind
	text string // word as written, quoted name without quotes, string value, number, operator
	pos  int
}

// MaxStatement is the longest statement accepted, in bytes.
const MaxStatement = 64 << 10

// refused names T-SQL constructs answered with a clear error wherever they appear as bare words.
var refused = map[string]string{
	"EXEC": "EXEC (stored procedures)", "EXECUTE": "EXECUTE (stored procedures)", "CREATE": "CREATE", "DROP": "DROP",
	"ALTER": "ALTER", "MERGE": "MERGE", "DECLARE": "DECLARE (variables)", "WITH": "WITH (common table expressions, table hints)",
	"OUTPUT": "OUTPUT", "APPLY": "APPLY", "PIVOT": "PIVOT", "UNPIVOT": "UNPIVOT", "OFFSET": "OFFSET ... FETCH", "FETCH": "OFFSET ... FETCH",
	"GRANT": "GRANT", "REVOKE": "REVOKE", "DENY": "DENY", "BEGIN": "transactions (BEGIN)", "COMMIT": "transactions (COMMIT)",
	"ROLLBACK": "transactions (ROLLBACK)", "SAVE": "transactions (SAVE)", "NEWID": "NEWID()", "CHARINDEX": "CHARINDEX", "CONVERT": "CONVERT",
	"CAST": "CAST", "TRY_CAST": "TRY_CAST", "TRY_CONVERT": "TRY_CONVERT", "DATEADD": "DATEADD", "DATEDIFF": "DATEDIFF",
	"IDENTITY": "IDENTITY", "SCOPE_IDENTITY": "SCOPE_IDENTITY()", "NOLOCK": "table hints", "IIF": "IIF",
	"OPENQUERY": "OPENQUERY", "OPENROWSET": "OPENROWSET", "OPENDATASOURCE": "OPENDATASOURCE", "OPENXML": "OPENXML",
	"INFORMATION_SCHEMA": "INFORMATION_SCHEMA", "SYS": "system views", "WAITFOR": "WAITFOR", "USE": "USE", "GO": "GO",
	"SHUTDOWN": "SHUTDOWN", "KILL": "KILL", "RECONFIGURE": "RECONFIGURE", "BULK": "BULK", "BACKUP": "BACKUP", "RESTORE": "RESTORE",
	"DBCC": "DBCC", "SETUSER": "SETUSER", "PRINT": "PRINT", "RAISERROR": "RAISERROR", "THROW": "THROW", "COLLATE": "COLLATE",
	"INTERSECT": "INTERSECT", "EXCEPT": "EXCEPT", "OVER": "window functions (OVER)", "FOR": "FOR (XML, JSON, BROWSE)",
	"OPTION": "query hints (OPTION)", "TABLESAMPLE": "TABLESAMPLE", "CONTAINS": "full-text search", "FREETEXT": "full-text search",
	"CONTAINSTABLE": "full-text search", "FREETEXTTABLE": "full-text search", "READTEXT": "READTEXT", "WRITETEXT": "WRITETEXT",
	"UPDATETEXT": "UPDATETEXT", "RETURNING": "RETURNING",
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// lex splits a statement into tokens. Only ASCII outside string literals and quoted names: any
// other character (look-alike quotes, invisible characters) is an error, never a separator.
func lex(s string) ([]token, error) {
	if len(s) > MaxStatement {
		return nil, errorf("the statement is longer than %d bytes", MaxStatement)
	}
	var out []token
	var refusal error // the first refused word, reported after the statement count is checked
	for i := 0; i < len(s); {
		c := s[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			// T-SQL block comments nest.
			depth := 0
			for {
				if i+1 >= len(s) {
					return nil, errorf("unterminated comment")
				}
				if s[i] == '/' && s[i+1] == '*' {
					depth++
					i += 2
					continue
				}
				if s[i] == '*' && s[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
					continue
				}
				i++
			}
		case c == '\'' || ((c == 'N' || c == 'n') && i+1 < len(s) && s[i+1] == '\''):
			if c != '\'' {
				i++
			}
			j := i + 1
			var b strings.Builder
			for {
				if j >= len(s) {
					return nil, errorf("unterminated string literal")
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				if s[j] == 0 {
					return nil, errorf("a string literal contains a NUL character")
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{kind: tString, text: b.String(), pos: start})
			i = j + 1
		case c == '[' || c == '"':
			closer := byte(']')
			if c == '"' {
				closer = '"'
			}
			j := i + 1
			var b strings.Builder
			for {
				if j >= len(s) {
					return nil, errorf("unterminated quoted name")
				}
				if s[j] == closer {
					if j+1 < len(s) && s[j+1] == closer {
						b.WriteByte(closer)
						j += 2
						continue
					}
					break
				}
				if s[j] < 0x20 || s[j] == 0x7f {
					return nil, errorf("a quoted name contains a control character")
				}
				b.WriteByte(s[j])
				j++
			}
			if b.Len() == 0 {
				return nil, errorf("empty quoted name")
			}
			out = append(out, token{kind: tQuoted, text: b.String(), pos: start})
			i = j + 1
		case c == '?':
			out = append(out, token{kind: tParam, text: "?", pos: start})
			i++
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			if j < len(s) && s[j] == '.' {
				j++
				for j < len(s) && isDigit(s[j]) {
					j++
				}
			}
			if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
				k := j + 1
				if k < len(s) && (s[k] == '+' || s[k] == '-') {
					k++
				}
				if k < len(s) && isDigit(s[k]) {
					for k < len(s) && isDigit(s[k]) {
						k++
					}
					j = k
				}
			}
			if j < len(s) && (isLetter(s[j]) || s[j] == '_') {
				return nil, errorf("malformed number near '%s'", s[i:min(len(s), j+1)])
			}
			out = append(out, token{kind: tNumber, text: s[i:j], pos: start})
			i = j
		case c == '@' || c == '#':
			j := i + 1
			for j < len(s) && (isLetter(s[j]) || isDigit(s[j]) || s[j] == '_' || s[j] == '@' || s[j] == '#') {
				j++
			}
			return nil, errorf("'%s' is not supported (variables and temporary tables)", s[i:j])
		case isLetter(c) || c == '_':
			j := i
			for j < len(s) && (isLetter(s[j]) || isDigit(s[j]) || s[j] == '_') {
				j++
			}
			if j < len(s) && (s[j] == '$' || s[j] == '@' || s[j] == '#') {
				return nil, errorf("unexpected character %q", s[j])
			}
			w := s[i:j]
			if what, ok := refused[strings.ToUpper(w)]; ok && refusal == nil {
				refusal = errorf("%s is not supported", what)
			}
			out = append(out, token{kind: tWord, text: w, pos: start})
			i = j
		default:
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "<>", "!=", "<=", ">=":
					out = append(out, token{kind: tOp, text: two, pos: start})
					i += 2
					continue
				}
			}
			if strings.IndexByte("(),.;*=<>+-/%", c) >= 0 {
				out = append(out, token{kind: tOp, text: string(c), pos: start})
				i++
				continue
			}
			if c >= 0x80 {
				return nil, errorf("unexpected non-ASCII character outside a string or quoted name")
			}
			return nil, errorf("unexpected character %q", c)
		}
	}
	for i, t := range out {
		if t.kind == tOp && t.text == ";" {
			for _, u := range out[i+1:] {
				if u.kind != tOp || u.text != ";" {
					return nil, errorf("multiple statements in one query are not supported")
				}
			}
		}
	}
	if refusal != nil {
		return nil, refusal
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}
