package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/config"
)

// A trail has one writer: the gateway that holds its lock. Command-line
// tools that change something (users import, users pending --cancel…) must
// be audited whether or not a gateway is running, so they write through a
// [Writer]: the trail itself when it is free, or else the spool, a
// directory of JSON-lines files inside the trail's directory that the
// running gateway drains into the chain ([Trail.DrainSpool]). Spooled
// records keep their own time; they get their seq and hash when drained.

// SpoolDir is the spool directory of a trail directory.
func SpoolDir(dir string) string { return filepath.Join(dir, "spool") }

// Writer is where a tool appends audit records.
type Writer interface {
	Append(rec *Record) error
	Close() error
}

// OpenWriter opens the trail for appending, or, when a running gateway
// holds it ([ErrLocked]), a spool that the gateway drains within seconds.
// spooled reports which one was opened.
func OpenWriter(cfg config.Audit, opts ...Option) (w Writer, spooled bool, err error) {
	t, err := Open(cfg, opts...)
	if err == nil {
		return t, false, nil
	}
	if !errors.Is(err, ErrLocked) {
		return nil, false, err
	}
	return &spool{dir: cfg.Dir}, true, nil
}

// spool buffers records and writes them as one file on Close, so a
// gateway never drains half of one command's records.
type spool struct {
	dir  string
	mu   sync.Mutex
	recs []Record
}

func (s *spool) Append(rec *Record) error {
	if rec == nil {
		return ErrInvalidRecord
	}
	c := *rec
	if c.Time.IsZero() {
		c.Time = time.Now().UTC()
	}
	c.Seq, c.Prev, c.Hash = 0, "", ""
	s.mu.Lock()
	s.recs = append(s.recs, c)
	s.mu.Unlock()
	return nil
}

// spooledRecord is a record without chain fields, as spooled.
type spooledRecord Record

func (s *spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recs) == 0 {
		return nil
	}
	dir := SpoolDir(s.dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating audit spool: %w", err)
	}
	var b bytes.Buffer
	for i := range s.recs {
		line, err := json.Marshal((*spooledRecord)(&s.recs[i]))
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	name := fmt.Sprintf("%020d-%d.jsonl", time.Now().UnixNano(), os.Getpid())
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("writing audit spool: %w", err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing audit spool: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("syncing audit spool: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("publishing audit spool: %w", err)
	}
	s.recs = nil
	return nil
}

// DrainSpool appends every spooled record to the chain, oldest file first,
// durably, and removes each file once its records are on disk. A file that
// cannot be parsed is renamed to *.bad and reported, never dropped.
func (t *Trail) DrainSpool() (int, error) {
	dir := SpoolDir(t.cfg.Dir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".jsonl") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		path := filepath.Join(dir, name)
		recs, err := readSpool(path)
		if err != nil {
			_ = os.Rename(path, path+".bad")
			return n, fmt.Errorf("audit spool %s is unreadable (kept as .bad): %w", name, err)
		}
		for _, r := range recs {
			// Durable, so the file is removed only once its records are safe.
			if err := t.AppendDurable(context.Background(), r); err != nil {
				return n, err
			}
			n++
		}
		if err := os.Remove(path); err != nil {
			return n, err
		}
	}
	return n, nil
}

func readSpool(path string) ([]*Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		var r spooledRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		rec := Record(r)
		rec.Seq, rec.Prev, rec.Hash, rec.Checkpoint = 0, "", "", ""
		if rec.Event == EventCheckpoint {
			return nil, fmt.Errorf("line %d: a spool may not carry checkpoints", line)
		}
		out = append(out, &rec)
	}
	return out, sc.Err()
}
