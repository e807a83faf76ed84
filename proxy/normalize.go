package proxy

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Errors from [NormalizePath]. Each is a refusal: the request gets 400 and
// an audit record, and is never matched or forwarded.
var (
	ErrPathEncodedSeparator = errors.New("path contains an encoded separator (%2f or %5c)")
	ErrPathBackslash        = errors.New("path contains a backslash")
	ErrPathControl          = errors.New("path contains NUL or a control character")
	ErrPathBadEscape        = errors.New("path contains a malformed percent-escape")
	ErrPathBadUTF8          = errors.New("path is not valid UTF-8 (overlong or truncated sequence)")
	ErrPathNotAbsolute      = errors.New("path does not start with /")
	ErrPathTrailingDot      = errors.New("path segment ends with a dot or space")
	ErrPathTooLong          = errors.New("path is too long")
)

// maxPathLen bounds the normalised path; longer paths are refused.
const maxPathLen = 8192

// NormalizePath turns the escaped path of a request (as sent on the wire,
// without query or fragment) into the one path that sekisho both matches
// routes against and forwards upstream. It is the single defence against
// path confusion, so it refuses rather than guesses:
//
//   - percent-escapes are decoded; an escaped "/" or "\" (%2f, %5c), NUL or any
//     control character, a raw backslash, a malformed escape or invalid UTF-8
//     (which includes overlong encodings) is refused;
//   - empty segments ("//") are dropped, "." segments removed and ".."
//     segments resolved (never above the root), whether they arrived plain or
//     as %2e;
//   - a segment that ends in "." or " " (other than "." and "..") is refused,
//     because some upstream servers drop trailing dots and spaces;
//   - a trailing slash is kept, since upstreams distinguish "/a" from "/a/".
//
// The result is decoded (not escaped) and always starts with "/".
func NormalizePath(escaped string) (string, error) {
	if escaped == "" {
		return "/", nil
	}
	if escaped[0] != '/' {
		return "", ErrPathNotAbsolute
	}
	if len(escaped) > maxPathLen {
		return "", ErrPathTooLong
	}
	decoded, err := unescapePath(escaped)
	if err != nil {
		return "", err
	}
	if !utf8.ValidString(decoded) {
		return "", ErrPathBadUTF8
	}
	if cleanPath(decoded) {
		return decoded, nil // what normalizeSegments gives back, without its allocations
	}
	return normalizeSegments(decoded)
}

// cleanPath reports whether normalizeSegments would return d unchanged:
// no empty segment but a last one (a trailing slash), no "." or ".."
// segment, no segment ending in "." or " ". d starts with "/".
// FuzzNormalizePath holds the two together.
func cleanPath(d string) bool {
	start := 1
	for i := 1; i <= len(d); i++ {
		if i < len(d) && d[i] != '/' {
			continue
		}
		seg := d[start:i]
		switch {
		case seg == "":
			if i < len(d) {
				return false
			}
		case seg == "." || seg == "..":
			return false
		case seg[len(seg)-1] == '.' || seg[len(seg)-1] == ' ':
			return false
		}
		start = i + 1
	}
	return true
}

// normalizeSegments drops empty and "." segments, resolves "..", and
// refuses a segment ending in "." or " ", of a decoded path starting with
// "/".
func normalizeSegments(decoded string) (string, error) {
	trailing := strings.HasSuffix(decoded, "/")
	segs := strings.Split(decoded, "/")
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		switch s {
		case "", ".":
			continue
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			continue
		}
		if last := s[len(s)-1]; last == '.' || last == ' ' {
			return "", ErrPathTrailingDot
		}
		out = append(out, s)
	}
	// A path ending in "/." or "/.." names a directory: keep the slash.
	if n := len(segs); n > 0 && (segs[n-1] == "." || segs[n-1] == "..") {
		trailing = true
	}
	var b strings.Builder
	b.Grow(len(decoded) + 1)
	for _, s := range out {
		b.WriteByte('/')
		b.WriteString(s)
	}
	if b.Len() == 0 || trailing {
		b.WriteByte('/')
	}
	return b.String(), nil
}

// unescapePath decodes percent-escapes and refuses what must never reach
// matching: encoded separators, backslashes, NUL and control characters.
func unescapePath(s string) (string, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", ErrPathBadEscape
			}
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			switch {
			case v == '/' || v == '\\':
				return "", ErrPathEncodedSeparator
			case v < 0x20 || v == 0x7f:
				return "", ErrPathControl
			}
			if b == nil {
				b = make([]byte, 0, len(s))
				b = append(b, s[:i]...)
			}
			b = append(b, v)
			i += 2
			continue
		case c == '\\':
			return "", ErrPathBackslash
		case c < 0x20 || c == 0x7f:
			return "", ErrPathControl
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return s, nil
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
