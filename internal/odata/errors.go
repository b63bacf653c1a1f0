package odata

import (
	"errors"
	"fmt"
)

// ErrBadQuery is matched (errors.Is) by every error this package returns for
// client input: syntax errors, unknown columns, type errors, limits and bad
// option values. HTTP handlers map it to 400 Bad Request.
var ErrBadQuery = errors.New("odata: bad query")

// SyntaxError reports malformed $filter, $orderby or $select text. Pos is the
// 0-based character (rune) index into the option's value, or -1 when unknown.
type SyntaxError struct {
	Option string // "$filter", "$orderby" or "$select"
	Pos    int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s: syntax error at position %d: %s", optionName(e.Option), e.Pos, e.Msg)
}

// Is makes errors.Is(err, ErrBadQuery) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrBadQuery }

// UnknownColumnError reports a member name that the Schema does not know.
type UnknownColumnError struct {
	Option string
	Pos    int // 0-based character index, -1 when unknown (programmatic AST)
	Name   string
}

func (e *UnknownColumnError) Error() string {
	if e.Pos < 0 {
		return fmt.Sprintf("%s: unknown column '%s'", optionName(e.Option), e.Name)
	}
	return fmt.Sprintf("%s: unknown column '%s' at position %d", optionName(e.Option), e.Name, e.Pos)
}

// Is makes errors.Is(err, ErrBadQuery) true.
func (e *UnknownColumnError) Is(target error) bool { return target == ErrBadQuery }

// TypeError reports a well-formed expression whose operand types do not fit,
// e.g. comparing a String column with a number, or an invalid date string.
type TypeError struct {
	Option string
	Pos    int // 0-based character index, -1 when unknown
	Msg    string
}

func (e *TypeError) Error() string {
	if e.Pos < 0 {
		return fmt.Sprintf("%s: %s", optionName(e.Option), e.Msg)
	}
	return fmt.Sprintf("%s: type error at position %d: %s", optionName(e.Option), e.Pos, e.Msg)
}

// Is makes errors.Is(err, ErrBadQuery) true.
func (e *TypeError) Is(target error) bool { return target == ErrBadQuery }

// LimitError reports a value above a configured maximum: $top above MaxTop,
// or a query too large to compile (length, depth, number of parameters).
type LimitError struct {
	Option string
	Max    int
	Msg    string
}

func (e *LimitError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	// The v2 server's wording; clients show it to users.
	return fmt.Sprintf("You cannot request more than %d records", e.Max)
}

// Is makes errors.Is(err, ErrBadQuery) true.
func (e *LimitError) Is(target error) bool { return target == ErrBadQuery }

// OptionError reports an invalid value for a query option such as $top,
// $skip or $inlinecount, or an option given more than once.
type OptionError struct {
	Option string
	Msg    string
}

func (e *OptionError) Error() string { return fmt.Sprintf("%s: %s", e.Option, e.Msg) }

// Is makes errors.Is(err, ErrBadQuery) true.
func (e *OptionError) Is(target error) bool { return target == ErrBadQuery }

func optionName(o string) string {
	if o == "" {
		return "$filter"
	}
	return o
}
