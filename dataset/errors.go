package dataset

import (
	"errors"
	"fmt"
	"strings"
)

// Error classes. Callers test them with errors.Is; the edges map them
// through internal/errcode.
var (
	// ErrInvalidInput marks input that cannot be used as given: a malformed
	// file, an unknown format, a classification naming a missing column.
	ErrInvalidInput = errors.New("invalid input")
	// ErrNotFound marks a file or column that does not exist.
	ErrNotFound = errors.New("not found")
)

// InputError describes what is wrong with an input file and where. It never
// holds a value read from the file.
type InputError struct {
	File   string // path as given by the caller
	Line   int64  // 1-based line (CSV) or row (other formats); 0 if unknown
	Column string // column name; empty if not about one column
	Offset int64  // byte offset; -1 if unknown
	Msg    string // what is wrong, without data values
	Err    error  // underlying class; ErrInvalidInput when nil
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	var where []string
	if e.Line > 0 {
		where = append(where, fmt.Sprintf("line %d", e.Line))
	}
	if e.Column != "" {
		where = append(where, fmt.Sprintf("column %q", e.Column))
	}
	if e.Offset >= 0 {
		where = append(where, fmt.Sprintf("offset %d", e.Offset))
	}
	if len(where) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(where, ", "))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the error class.
func (e *InputError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrInvalidInput
}

func inputErr(file string, line int64, column string, offset int64, format string, args ...any) *InputError {
	return &InputError{File: file, Line: line, Column: column, Offset: offset, Msg: fmt.Sprintf(format, args...)}
}

// TypeConflictError reports a CSV value that does not fit the type inferred
// for its column from the leading sample. Stream handles it by widening the
// column to a string and starting again.
type TypeConflictError struct {
	File   string
	Line   int64
	Column string
	Type   string
}

func (e *TypeConflictError) Error() string {
	return fmt.Sprintf("%s: line %d, column %q: value is not a %s as inferred from earlier rows", e.File, e.Line, e.Column, e.Type)
}

// Unwrap returns ErrInvalidInput: a conflict that escapes Stream is bad input.
func (e *TypeConflictError) Unwrap() error { return ErrInvalidInput }
