package directory

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Entry is one staff member as the personnel system or the directory
// server says they should be.
type Entry struct {
	ID          string
	DisplayName string
	Department  string
	// Roles are sorted and without duplicates.
	Roles    []string
	Disabled bool
	// Effective is the first moment of the 発令日 (effective date) in the
	// directory's time zone; zero means at once.
	Effective time.Time
	// Where is where the entry came from: "jinji.csv:12" or an LDAP DN.
	Where string
}

// Source is a set of entries from one CSV file or one LDAP search.
type Source struct {
	// Name says what was read ("jinji.csv", "ldaps://ad.example.lg.jp").
	Name    string
	Entries []*Entry
	// Full: users absent from Entries are disabled (never deleted).
	Full bool
}

// userIDPattern is what a user id may be; the same rule as `sekisho users
// add`: it appears in audit records and URLs.
var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// maxNameLen bounds display names, departments and role names (runes).
const maxNameLen = 128

// checkText reports what is wrong with a display name, department or
// role name, or "".
func checkText(s string) string {
	if !utf8.ValidString(s) {
		return "not valid text (文字コードが不正です)"
	}
	if utf8.RuneCountInString(s) > maxNameLen {
		return fmt.Sprintf("longer than %d characters (%d 文字以内にしてください)", maxNameLen, maxNameLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\uFFFD' || unicode.Is(unicode.Cf, r) {
			return fmt.Sprintf("contains the character %U (使えない文字 %U が含まれています)", r, r)
		}
	}
	return ""
}

// Roles is the set of role names an import may assign.
type Roles map[string]bool

// NewRoles returns the set of names, each without a "role:" prefix.
func NewRoles(names ...string) Roles {
	r := Roles{}
	for _, n := range names {
		if n = strings.TrimPrefix(strings.TrimSpace(n), "role:"); n != "" {
			r[n] = true
		}
	}
	return r
}

// Sorted lists the names in order.
func (r Roles) Sorted() []string {
	out := make([]string, 0, len(r))
	for n := range r {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// splitRoles splits a roles cell on ";" or "|" (either, not mixed
// meanings), trims each name and drops a "role:" prefix, empty names and
// duplicates; the result is sorted.
func splitRoles(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '|' }) {
		f = strings.TrimPrefix(trim(f), "role:")
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// trim removes ASCII and ideographic (全角) spaces around s.
func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\u3000' })
}

// RowError is one bad row (or header) of an import.
type RowError struct {
	// File and Line locate the row; Line is 1-based, 0 for a problem with
	// the file as a whole. For LDAP, File is the entry's DN.
	File string
	Line int
	// Column is the column's name as written in the header, "" for the
	// whole row.
	Column string
	Msg    string
}

func (e *RowError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Column != "" {
		b.WriteString(": " + e.Column)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// maxRowErrors bounds the errors reported for one import.
const maxRowErrors = 100

// RowErrors is every problem found in one import, in line order. Nothing
// is applied when an import has any.
type RowErrors struct {
	List []*RowError
	// More counts errors past maxRowErrors that were not kept.
	More int
}

func (e *RowErrors) add(file string, line int, column, format string, args ...any) {
	if len(e.List) >= maxRowErrors {
		e.More++
		return
	}
	e.List = append(e.List, &RowError{File: file, Line: line, Column: column, Msg: fmt.Sprintf(format, args...)})
}

func (e *RowErrors) Error() string {
	lines := make([]string, 0, len(e.List)+1)
	for _, r := range e.List {
		lines = append(lines, r.Error())
	}
	if e.More > 0 {
		lines = append(lines, fmt.Sprintf("… and %d more (ほか %d 件)", e.More, e.More))
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find one *RowError.
func (e *RowErrors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, r := range e.List {
		out[i] = r
	}
	return out
}

// err returns e, or nil when it holds nothing.
func (e *RowErrors) err() error {
	if len(e.List) == 0 {
		return nil
	}
	return e
}

// ErrTooManyDisabled: a full import or sync would disable more users than
// the configured limit (directory.max_disable).
var ErrTooManyDisabled = errors.New("directory: too many users would be disabled")
