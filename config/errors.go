package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file: where it is and what is
// wrong. Line is 1-based and is never zero for an error [Load] returns.
type Error struct {
	File string
	Line int
	// Key is the path of the offending key, e.g. "routes[1].upstream" or
	// "zones.chonai[0]"; sequence indexes count from 0. Empty for a YAML
	// syntax error.
	Key string
	// Msg says what is wrong, in English with the Japanese explanation in
	// parentheses.
	Msg string
}

// Error formats e as "file:line: key: message".
func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// Errors is every problem found in one configuration file, ordered by line.
// [Load] returns it (as *Errors) whenever the file is not valid, so a user
// sees all mistakes at once rather than one per run.
type Errors struct {
	List []*Error
	// stop is the "too many errors" entry, appended last by err.
	stop *Error
}

// Error joins the errors, one per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, err := range e.List {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find an individual *Error.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, err := range e.List {
		errs[i] = err
	}
	return errs
}

// maxErrors bounds the errors reported for one file: past it the file is
// probably not a sekisho configuration at all, and a longer list helps
// nobody.
const maxErrors = 100

// full reports whether no more errors will be recorded.
func (e *Errors) full() bool { return e.stop != nil }

func (e *Errors) add(file string, line int, key, format string, args ...any) {
	if e.full() {
		return
	}
	if line < 1 {
		line = 1
	}
	if len(e.List) == maxErrors {
		e.stop = &Error{File: file, Line: line, Msg: "too many errors; stopping here (誤りが多すぎるため、ここで打ち切ります)"}
		return
	}
	e.List = append(e.List, &Error{File: file, Line: line, Key: oneLine(key), Msg: oneLine(fmt.Sprintf(format, args...))})
}

// oneLine escapes control characters (a key may be any YAML string), so
// that each error stays on one line of output.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// sort orders errors by line, keeping discovery order within a line.
func (e *Errors) sort() {
	slices.SortStableFunc(e.List, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
}

// err returns e as an error, or nil when it holds none.
func (e *Errors) err() error {
	if len(e.List) == 0 {
		return nil
	}
	e.sort()
	if e.stop != nil {
		e.List = append(e.List, e.stop)
		e.stop = nil
	}
	return e
}
