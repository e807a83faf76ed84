package audit

import (
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"time"
)

// Filter selects records. Empty fields match everything; set fields must
// match exactly.
type Filter struct {
	User      string
	Device    string
	Route     string
	Class     string
	Zone      string
	Decision  string
	Event     string
	RequestID string
	// Enforced, if set, selects enforced (true) or shadow-mode (false) decisions.
	Enforced *bool
	// Since and Until bound the record time: Since <= time < Until. Zero: open.
	Since, Until time.Time
	// Limit stops after this many matches; 0: no limit.
	Limit int
}

// Match reports whether r passes the filter (Limit aside).
func (f *Filter) Match(r *Record) bool {
	switch {
	case f.User != "" && r.User != f.User,
		f.Device != "" && r.Device != f.Device,
		f.Route != "" && r.Route != f.Route,
		f.Class != "" && r.Class != f.Class,
		f.Zone != "" && r.Zone != f.Zone,
		f.Decision != "" && r.Decision != f.Decision,
		f.Event != "" && r.Event != f.Event,
		f.RequestID != "" && r.RequestID != f.RequestID,
		f.Enforced != nil && r.Enforced != *f.Enforced,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	return true
}

// LineError is a line that is not a readable record. Query reports it and
// goes on; only Verify judges whether the trail is intact.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: 記録として読めません (not a record): %v", e.File, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// Query iterates over the records in dir that match f, in chain order. It
// does not verify the trail (see [Verify]). A line that is not a record
// yields (nil, *LineError) and the iteration continues; an I/O error yields
// (nil, err) and ends it. Every file is read: record times are set by
// callers (and by imports), so a file's day does not bound them.
func Query(dir string, f Filter) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		names, err := listFiles(dir)
		if err != nil {
			yield(nil, err)
			return
		}
		n := 0
		for _, name := range names {
			stop := false
			var scratch []byte
			err := scanLines(filepath.Join(dir, name), func(line []byte, _ int64, ln int, terminated bool) bool {
				r := new(Record)
				var perr error
				scratch, perr = parseLine(line, r, scratch)
				if perr == nil && !terminated {
					perr = errors.New("line has no newline")
				}
				if perr != nil {
					if len(line) == 0 && terminated {
						return true
					}
					if !yield(nil, &LineError{File: name, Line: ln, Err: perr}) {
						stop = true
						return false
					}
					return true
				}
				if !f.Match(r) {
					return true
				}
				n++
				if !yield(r, nil) || (f.Limit > 0 && n >= f.Limit) {
					stop = true
					return false
				}
				return true
			})
			if err != nil {
				yield(nil, err)
				return
			}
			if stop {
				return
			}
		}
	}
}

// QueryAll collects [Query] into a slice, skipping unreadable lines (their
// count is returned).
func QueryAll(dir string, f Filter) (recs []*Record, unreadable int, err error) {
	for r, err := range Query(dir, f) {
		var le *LineError
		switch {
		case errors.As(err, &le):
			unreadable++
		case err != nil:
			return recs, unreadable, err
		default:
			recs = append(recs, r)
		}
	}
	return recs, unreadable, nil
}
