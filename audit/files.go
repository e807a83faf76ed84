package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// File names: audit-YYYYMMDD-NNNN.jsonl, the UTC date the file was started
// and its number within that day. Name order is chain order.
const (
	filePrefix = "audit-"
	fileSuffix = ".jsonl"
	// headFile holds the newest checkpoint's JWS, so that cutting records off
	// the end of the trail (checkpoints included) is detected.
	headFile = "checkpoint.jws"
	// maxLine bounds one record line; longer lines are not records.
	maxLine = 1 << 20
)

func fileName(day string, n int) string {
	return fmt.Sprintf("%s%s-%04d%s", filePrefix, day, n, fileSuffix)
}

// parseFileName returns the day and number of a trail file name.
func parseFileName(name string) (day string, n int, ok bool) {
	if !strings.HasPrefix(name, filePrefix) || !strings.HasSuffix(name, fileSuffix) {
		return "", 0, false
	}
	mid := strings.TrimSuffix(strings.TrimPrefix(name, filePrefix), fileSuffix)
	d, num, found := strings.Cut(mid, "-")
	if !found || len(d) != 8 || len(num) < 4 {
		return "", 0, false
	}
	if _, err := time.Parse("20060102", d); err != nil {
		return "", 0, false
	}
	v, err := strconv.Atoi(num)
	if err != nil || v < 0 {
		return "", 0, false
	}
	return d, v, true
}

// listFiles returns the trail's file names in chain order.
func listFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing audit directory %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if _, _, ok := parseFileName(e.Name()); ok && !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool {
		di, ni, _ := parseFileName(names[i])
		dj, nj, _ := parseFileName(names[j])
		if di != dj {
			return di < dj
		}
		return ni < nj
	})
	return names, nil
}

// tailState is what the end of a file says about the chain.
type tailState struct {
	last     *Record // last valid record, nil if none
	lastEnd  int64   // offset just after the last valid record's newline
	size     int64   // file size
	tornFrom int64   // == size when nothing is torn
}

// scanTail finds the last valid record of a file and any bytes after it
// that are not valid records (a torn write after a crash). It reads
// backwards in growing windows, so a large file is not read whole.
func scanTail(path string) (*tailState, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	size := fi.Size()
	st := &tailState{size: size, tornFrom: 0, lastEnd: 0}
	var rec Record
	var scratch []byte
	for window := int64(64 << 10); ; window *= 2 {
		start := max(size-window, 0)
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		// Lines that end with a newline, from the last backwards. When the
		// window does not start the file, its first line may be cut: skip it.
		end := bytes.LastIndexByte(buf, '\n') + 1 // bytes after end are an unterminated tail
		lo := 0
		if start > 0 {
			k := bytes.IndexByte(buf, '\n')
			if k < 0 || k+1 >= end {
				continue // no whole line in this window yet
			}
			lo = k + 1
		}
		for hi := end; hi > lo; {
			i := lo
			if k := bytes.LastIndexByte(buf[lo:hi-1], '\n'); k >= 0 {
				i = lo + k + 1
			}
			scratch, err = parseLine(buf[i:hi-1], &rec, scratch)
			if err == nil {
				r := rec
				st.last = &r
				st.lastEnd = start + int64(hi)
				st.tornFrom = st.lastEnd
				return st, nil
			}
			hi = i
		}
		if start == 0 {
			// No valid record at all: everything is torn (or the file is empty).
			return st, nil
		}
	}
}

// tornRegion describes unreadable bytes sealed after a crash. It is the
// detail of an [ActionTornSealed] record; verifiers compare it with the
// bytes they found.
type tornRegion struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
	// NewlineAdded says the trail appended a newline to terminate the bytes.
	NewlineAdded bool `json:"newline_added"`
}

func hashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeFileAtomic writes data to path through a temporary file and rename.
func writeFileAtomic(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// relName is the file name shown to people.
func relName(dir, name string) string { return filepath.Join(dir, name) }
