package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// timeLayout is how the SQLite store writes times: UTC, fixed width, so
// that comparing the text compares the instants. Microseconds, because
// PostgreSQL keeps no more and both stores must give back the same value.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Precision is the resolution at which every store keeps times; finer
// parts are truncated.
const Precision = time.Microsecond

// normTime is t as the stores give it back: UTC, truncated to Precision,
// the zero time left zero.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(Precision)
}

// sqliteTime encodes t for a TEXT column; the zero time is NULL.
func sqliteTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// parseSQLiteTime decodes what sqliteTime wrote.
func parseSQLiteTime(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing stored time %q: %w", s.String, err)
	}
	return t.UTC(), nil
}

// encodeList encodes a string list as a JSON array; nil is "[]".
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, err := json.Marshal(l)
	if err != nil {
		// A []string always marshals.
		panic(err)
	}
	return string(b)
}

// decodeList decodes what encodeList wrote; an empty array is nil.
func decodeList(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decoding stored list %q: %w", s, err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// cloneBytes returns a copy of b, nil for empty, so callers never share
// backing arrays with the store.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// addUnique appends s to l unless l already holds it.
func addUnique(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}
