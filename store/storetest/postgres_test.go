package storetest

import "testing"

func TestWithSearchPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test?search_path=s1&sslmode=disable"},
		{"postgresql://u:p@h/db", "postgresql://u:p@h/db?search_path=s1"},
		{"postgres://h/db?search_path=other", "postgres://h/db?search_path=s1"},
		{"host=127.0.0.1 dbname=test sslmode=disable", "host=127.0.0.1 dbname=test sslmode=disable search_path=s1"},
	} {
		if got := withSearchPath(tc.in, "s1"); got != tc.want {
			t.Errorf("withSearchPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
