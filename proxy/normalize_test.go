package proxy

import (
	"errors"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"", "/", nil},
		{"/", "/", nil},
		{"/a/b", "/a/b", nil},
		{"/a/b/", "/a/b/", nil},
		{"/public/../admin", "/admin", nil},
		{"/public/%2e%2e/admin", "/admin", nil},
		{"/public/%2E%2E/admin", "/admin", nil},
		{"/public/.%2e/admin", "/admin", nil},
		{"/../../etc/passwd", "/etc/passwd", nil},
		{"//admin", "/admin", nil},
		{"/a//b///c", "/a/b/c", nil},
		{"/a/./b", "/a/b", nil},
		{"/a/b/..", "/a/", nil},
		{"/a/b/.", "/a/b/", nil},
		{"/%E8%B2%A1%E5%8B%99", "/財務", nil},
		{"/a%20b", "/a b", nil},
		{"/admin;x", "/admin;x", nil},
		{"/a%3Fb", "/a?b", nil},
		{"/public%2fadmin", "", ErrPathEncodedSeparator},
		{"/public%2Fadmin", "", ErrPathEncodedSeparator},
		{"/public%5cadmin", "", ErrPathEncodedSeparator},
		{"/public\\..\\admin", "", ErrPathBackslash},
		{"/a%00b", "", ErrPathControl},
		{"/a\x00b", "", ErrPathControl},
		{"/a%0d%0aSet-Cookie:x", "", ErrPathControl},
		{"/a\tb", "", ErrPathControl},
		{"/a%7fb", "", ErrPathControl},
		{"/a%zz", "", ErrPathBadEscape},
		{"/a%2", "", ErrPathBadEscape},
		{"/a%", "", ErrPathBadEscape},
		{"/%c0%af", "", ErrPathBadUTF8},             // overlong "/"
		{"/%c0%ae%c0%ae/admin", "", ErrPathBadUTF8}, // overlong ".."
		{"/%e0%80%af", "", ErrPathBadUTF8},
		{"/%ff", "", ErrPathBadUTF8},
		{"/admin.", "", ErrPathTrailingDot},
		{"/admin%2e", "", ErrPathTrailingDot},
		{"/admin%20", "", ErrPathTrailingDot},
		{"/admin./x", "", ErrPathTrailingDot},
		{"admin", "", ErrPathNotAbsolute},
	}
	for _, tt := range tests {
		got, err := NormalizePath(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("NormalizePath(%q) error = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzNormalizePath checks the normaliser's invariants on any input: the
// result is absolute, clean (idempotent, no dot segments, no empty
// segments), valid UTF-8 and free of control characters and backslashes.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/x", "//a", "/a%2fb", "/%c0%ae", "/a;b", "/a/./b/", "/財務/%E8%B2%A1",
		"/a/b/", "/a.", "/a /b", "/a/..", "/a/.", "/.a/b..c/", "//", "/a//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		// The shortcut for clean paths gives what the segment walk gives.
		if in != "" && in[0] == '/' && cleanPath(in) {
			if got, err := normalizeSegments(in); err != nil || got != in {
				t.Fatalf("cleanPath(%q) but normalizeSegments gives %q, %v", in, got, err)
			}
		}
		out, err := NormalizePath(in)
		if err != nil {
			return
		}
		if out == "" || out[0] != '/' {
			t.Fatalf("NormalizePath(%q) = %q: not absolute", in, out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("NormalizePath(%q) = %q: forbidden byte %#x", in, out, c)
			}
		}
		if len(out) > 1 {
			for _, seg := range splitSegs(out) {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("NormalizePath(%q) = %q: unclean segment %q", in, out, seg)
				}
			}
		}
		// The output, escaped, must normalise to itself.
		again, err := NormalizePath(escapeForTest(out))
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
	})
}

func splitSegs(p string) []string {
	var segs []string
	start := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if i == len(p) && start == i {
				break // trailing slash
			}
			segs = append(segs, p[start:i])
			start = i + 1
		}
	}
	return segs
}

func escapeForTest(p string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' || c >= 0x80 || c == ' ' || c == '?' || c == '#' {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}
