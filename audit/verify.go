package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Problem is the first thing wrong with a trail: where it is and why, in
// Japanese and in English.
type Problem struct {
	File     string // file name inside the trail directory
	Line     int    // 1-based line in File; 0 when not about a line
	Seq      uint64 // the record's sequence number, 0 when unknown
	Reason   string // Japanese
	ReasonEN string // English
}

func (p *Problem) Error() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s seq %d: %s (%s)", loc, p.Seq, p.Reason, p.ReasonEN)
}

// ErrTampered is wrapped by the error of a result with a [Problem].
var ErrTampered = errors.New("audit trail is not intact")

// TornNote is a torn write sealed after a crash (see [ActionTornSealed]).
type TornNote struct {
	File     string
	Offset   int64
	Length   int64
	SealedBy uint64 // seq of the sealing system record
}

// VerifyResult is what [Verify] found.
type VerifyResult struct {
	Files    int
	Records  uint64 // records read, checkpoints included
	FirstSeq uint64
	LastSeq  uint64
	// Checkpoints verified; LastCheckpointSeq is the newest one's seq.
	Checkpoints       int
	LastCheckpointSeq uint64
	// Unsealed counts records after the last checkpoint (normal while the
	// gateway runs or after a crash; they are chained but not yet signed).
	Unsealed uint64
	// Closed is true when the trail ends with the final checkpoint of a
	// clean Close.
	Closed bool
	// Torn lists crash-torn writes that the trail sealed on reopen.
	Torn []TornNote
	// PartialTail is the length of an unterminated fragment at the end of
	// the last file: a write in progress, or a crash-torn write the trail
	// seals when it is next opened. It holds no record and is not a problem.
	PartialTail int64
	// RetainedFrom is set when older files were removed by retention and a
	// retention record accounts for the start of the trail.
	RetainedFrom uint64
	// Problem is the first defect found; nil when the trail is intact.
	Problem *Problem
}

// OK reports whether the trail is intact.
func (r *VerifyResult) OK() bool { return r.Problem == nil }

// Err returns nil when the trail is intact, else an error wrapping
// [ErrTampered] that describes the problem.
func (r *VerifyResult) Err() error {
	if r.Problem == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrTampered, r.Problem)
}

// Verify checks the whole trail in dir: every record canonical and its hash
// right, the chain unbroken across files, every checkpoint signed by a key
// in keys and sealing the chain head, torn writes sealed, the start of the
// trail accounted for, and the tail not cut below the newest checkpoint
// recorded in checkpoint.jws. It returns an error only when it could not
// run; a damaged trail is described in the result's Problem.
func Verify(dir string, keys jwk.Set) (*VerifyResult, error) {
	if keys == nil || keys.Len() == 0 {
		return nil, errors.New("verifying audit trail: no public key")
	}
	names, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	v := &verifier{keys: keys, res: &VerifyResult{Files: len(names)}, ckpts: map[uint64]string{}}
	// Read the head before the records: a running trail writes it only after
	// the records it names are on disk, so it never names more than we read.
	if head, err := os.ReadFile(filepath.Join(dir, headFile)); err == nil {
		v.head = head
	}
	if len(names) == 0 {
		v.res.Problem = &Problem{File: dir, Reason: "監査証跡のファイルがありません", ReasonEN: "no audit files"}
		return v.res, nil
	}
	if err := v.run(dir, names); err != nil {
		return nil, err
	}
	if v.res.Problem != nil {
		return v.res, nil
	}
	v.finish(dir, names[len(names)-1])
	return v.res, nil
}

// Verification is a pipeline: one goroutine reads the files in chunks of
// whole lines, workers parse and hash the chunks in parallel, and the
// caller's goroutine walks the results in order and checks the chain.
const verifyChunk = 4 << 20

// vchunk is a run of whole lines of one file. Its data is never modified
// after it is read, so parsed records may share its memory.
type vchunk struct {
	file string
	data []byte
	off  int64 // file offset of data[0]
	line int   // number of the first line, 1-based
	res  []lineRes
	done chan struct{}
}

// lineRes is one parsed line.
type lineRes struct {
	rec        Record
	err        error
	raw        []byte // the line without its newline
	off        int64
	n          int
	terminated bool
}

// Chunk buffers and results are reused: allocating and clearing 4 MiB per
// chunk would dominate. The verifier copies what it keeps (see lastHash).
var (
	chunkBufs = sync.Pool{New: func() any { b := make([]byte, 0, verifyChunk); return &b }}
	chunkRes  = sync.Pool{New: func() any { r := make([]lineRes, 0, verifyChunk/512); return &r }}
)

func (c *vchunk) release() {
	if cap(c.data) == verifyChunk {
		b := c.data[:0]
		chunkBufs.Put(&b)
	}
	clear(c.res)
	r := c.res[:0]
	chunkRes.Put(&r)
	c.data, c.res = nil, nil
}

func (c *vchunk) parse() {
	defer close(c.done)
	c.res = (*chunkRes.Get().(*[]lineRes))[:0]
	var scratch []byte
	data, off, n := c.data, c.off, c.line
	for len(data) > 0 {
		lr := lineRes{off: off, n: n}
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			lr.raw, data, lr.terminated = data[:i], data[i+1:], true
		} else {
			lr.raw, data = data, nil
		}
		if len(lr.raw) > maxLine {
			lr.err = fmt.Errorf("%w: line longer than %d bytes", errSyntax, maxLine)
		} else {
			scratch, lr.err = parseLineWith(lr.raw, &lr.rec, scratch, true)
		}
		if lr.err == nil && !lr.terminated {
			lr.err = errors.New("line has no newline")
		}
		off += int64(len(lr.raw))
		if lr.terminated {
			off++
		}
		n++
		c.res = append(c.res, lr)
	}
}

func (v *verifier) run(dir string, names []string) error {
	workers := max(1, runtime.GOMAXPROCS(0))
	ordered := make(chan *vchunk, 2*workers)
	work := make(chan *vchunk, 2*workers)
	stop := make(chan struct{})
	var readErr error
	go func() {
		defer close(ordered)
		defer close(work)
		readErr = readChunks(dir, names, ordered, work, stop)
	}()
	for range workers {
		go func() {
			for c := range work {
				c.parse()
			}
		}()
	}
	stopped := false
	for c := range ordered {
		if stopped {
			continue // drain
		}
		<-c.done
		for i := range c.res {
			v.line(c.file, &c.res[i])
			if v.res.Problem != nil {
				break
			}
		}
		c.release() // nothing of the chunk is kept beyond this point
		if v.res.Problem != nil {
			close(stop)
			stopped = true
		}
	}
	if v.res.Problem == nil && readErr != nil {
		return readErr
	}
	return nil
}

// readChunks reads the files in order and hands out chunks of whole lines.
func readChunks(dir string, names []string, ordered, work chan<- *vchunk, stop <-chan struct{}) error {
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("opening %s: %w", name, err)
		}
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		var carry []byte
		var off int64
		line := 1
		for {
			// Small files (and the last chunk) get small buffers.
			want := int(min(int64(verifyChunk), max(size-off+1, 4096)))
			var buf []byte
			if want == verifyChunk && len(carry) <= verifyChunk/2 {
				buf = (*chunkBufs.Get().(*[]byte))[:len(carry)]
			} else {
				buf = make([]byte, len(carry), max(want, 2*len(carry)))
			}
			copy(buf, carry)
			n, err := io.ReadFull(f, buf[len(carry):cap(buf)])
			buf = buf[:len(carry)+n]
			eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
			if err != nil && !eof {
				f.Close()
				return fmt.Errorf("reading %s: %w", name, err)
			}
			data := buf
			carry = nil
			if !eof {
				k := bytes.LastIndexByte(buf, '\n')
				if k < 0 && len(buf) < 16*maxLine {
					carry = buf // a line longer than the chunk: read on
					continue
				}
				if k >= 0 {
					// carry is copied: buf goes back to the pool with its chunk.
					data, carry = buf[:k+1], append([]byte(nil), buf[k+1:]...)
				}
			}
			if len(data) > 0 {
				c := &vchunk{file: name, data: data, off: off, line: line, done: make(chan struct{})}
				line += bytes.Count(data, []byte{'\n'})
				off += int64(len(data))
				select {
				case ordered <- c:
				case <-stop:
					f.Close()
					return nil
				}
				select {
				case work <- c:
				case <-stop:
					f.Close()
					return nil
				}
			}
			if eof {
				break
			}
		}
		f.Close()
	}
	return nil
}

type pendingBad struct {
	file   string
	lines  int  // how many unreadable lines
	open   bool // the last of them has no newline
	line   int
	seq    uint64
	offset int64
	length int64
	h      hash.Hash
	err    error
}

type verifier struct {
	keys       jwk.Set
	res        *VerifyResult
	have       bool
	lastSeq    uint64
	lastHash   [64]byte // copied: records share chunk buffers that are reused
	first      Record   // only Seq and Prev, copied (pgsink.go reads them too)
	firstFile  string
	retentions []retentionDetail
	ckpts      map[uint64]string // checkpoint payload seq → head
	head       []byte            // checkpoint.jws as read before the records
	pending    *pendingBad
}

func (v *verifier) problem(file string, line int, seq uint64, ja, en string) {
	if v.res.Problem == nil {
		v.res.Problem = &Problem{File: file, Line: line, Seq: seq, Reason: ja, ReasonEN: en}
	}
}

func (v *verifier) line(name string, lr *lineRes) {
	r, err, line, off, n, terminated := &lr.rec, lr.err, lr.raw, lr.off, lr.n, lr.terminated
	if err != nil {
		if v.pending == nil {
			v.pending = &pendingBad{file: name, line: n, offset: off, h: sha256.New(), err: err, seq: r.Seq}
		}
		v.pending.h.Write(line)
		v.pending.length += int64(len(line))
		v.pending.lines++
		v.pending.open = !terminated
		if terminated {
			v.pending.h.Write([]byte{'\n'})
			v.pending.length++
		}
		return
	}
	if p := v.pending; p != nil {
		v.pending = nil
		if !v.sealMatches(p, r) {
			v.badLine(p)
			return
		}
		v.res.Torn = append(v.res.Torn, TornNote{File: p.file, Offset: p.offset, Length: p.length, SealedBy: r.Seq})
	}
	v.res.Records++
	if !v.have {
		v.have = true
		v.first = Record{Seq: r.Seq, Prev: strings.Clone(r.Prev)}
		v.firstFile = name
		v.res.FirstSeq = r.Seq
		if r.Seq == 1 && r.Prev != Genesis {
			v.problem(name, n, r.Seq, "最初の記録の prev が起点値（0が64桁）ではありません", "the first record's prev is not the genesis value")
			return
		}
	} else {
		switch {
		case r.Seq != v.lastSeq+1 && r.Seq <= v.lastSeq:
			v.problem(name, n, r.Seq, fmt.Sprintf("順序が乱れているか重複しています（seq %d を期待）", v.lastSeq+1),
				fmt.Sprintf("out of order or duplicated: expected seq %d", v.lastSeq+1))
			return
		case r.Seq != v.lastSeq+1:
			v.problem(name, n, r.Seq, fmt.Sprintf("記録が欠落しています（seq %d を期待）", v.lastSeq+1),
				fmt.Sprintf("records missing: expected seq %d", v.lastSeq+1))
			return
		case r.Prev != string(v.lastHash[:]):
			v.problem(name, n, r.Seq, "prev が直前の記録のハッシュと一致しません（挿入・削除・並べ替え・改ざん）",
				"prev does not match the previous record's hash (insertion, deletion, reordering or edit)")
			return
		}
	}
	v.lastSeq = r.Seq
	copy(v.lastHash[:], r.Hash)
	v.res.LastSeq = r.Seq
	v.res.Unsealed++
	v.res.Closed = false
	switch {
	case r.Event == EventCheckpoint:
		p, err := verifyCheckpoint(r.Checkpoint, v.keys)
		if err != nil {
			v.problem(name, n, r.Seq, "チェックポイントの署名を検証できません: "+err.Error(), "checkpoint signature does not verify: "+err.Error())
			return
		}
		if p.Seq != r.Seq-1 || p.Head != r.Prev {
			v.problem(name, n, r.Seq, "チェックポイントが封印する連鎖の先頭が記録と一致しません", "the checkpoint's signed chain head does not match the records")
			return
		}
		v.ckpts[p.Seq] = p.Head
		v.res.Checkpoints++
		v.res.LastCheckpointSeq = r.Seq
		v.res.Unsealed = 0
		v.res.Closed = p.Final
	case r.Checkpoint != "":
		v.problem(name, n, r.Seq, "チェックポイント以外の記録に署名があります", "a record that is not a checkpoint carries a signature")
	case r.Event == EventSystem && r.Action == ActionRetention:
		var d retentionDetail
		if json.Unmarshal([]byte(r.Detail), &d) == nil {
			v.retentions = append(v.retentions, d)
		}
	}
}

func (v *verifier) sealMatches(p *pendingBad, r *Record) bool {
	if r.Event != EventSystem || r.Action != ActionTornSealed {
		return false
	}
	var d tornRegion
	if err := json.Unmarshal([]byte(r.Detail), &d); err != nil {
		return false
	}
	return d.File == p.file && d.Offset == p.offset && d.Length == p.length && d.SHA256 == hex.EncodeToString(p.h.Sum(nil))
}

func (v *verifier) badLine(p *pendingBad) {
	if errors.Is(p.err, errHashMismatch) {
		v.problem(p.file, p.line, p.seq, "ハッシュが内容と一致しません（記録が書き換えられています）", "hash does not match the content (the record was edited)")
		return
	}
	v.problem(p.file, p.line, p.seq, "記録として読めません: "+p.err.Error(), "not a valid record: "+p.err.Error())
}

func (v *verifier) finish(dir, lastFile string) {
	if p := v.pending; p != nil {
		switch {
		case p.lines == 1 && p.open && p.file == lastFile && !errors.Is(p.err, errHashMismatch):
			// One unterminated fragment at the very end: a write in
			// progress (a live trail) or torn by a crash and not yet
			// sealed. It holds no record, so it hides nothing; cuts are
			// judged against checkpoint.jws below.
			v.res.PartialTail = p.length
		case errors.Is(p.err, errHashMismatch):
			v.badLine(p)
			return
		default:
			v.problem(p.file, p.line, v.lastSeq+1, "読めない行が末尾にあり、封印されていません: "+p.err.Error(),
				"unreadable lines at the end are not sealed: "+p.err.Error())
			return
		}
	}
	if !v.have {
		v.problem(lastFile, 0, 0, "記録がありません", "the trail holds no record")
		return
	}
	if v.first.Seq != 1 {
		ok := false
		for _, d := range v.retentions {
			if d.ThroughSeq+1 == v.first.Seq && d.Head == v.first.Prev {
				ok = true
			}
		}
		if !ok {
			v.problem(v.firstFile, 1, v.first.Seq, fmt.Sprintf("証跡の先頭（seq 1〜%d）が失われています（保存期間による削除の記録がありません）", v.first.Seq-1),
				fmt.Sprintf("the start of the trail (seq 1 to %d) is missing and no retention record accounts for it", v.first.Seq-1))
			return
		}
		v.res.RetainedFrom = v.first.Seq
	}
	// The head file names the newest checkpoint the writer made; a trail
	// that ends before it was cut.
	if v.head == nil {
		return // no head file: nothing more to compare (older trail or first run)
	}
	jws := string(trimSpace(v.head))
	p, err := verifyCheckpoint(jws, v.keys)
	if err != nil {
		v.problem(headFile, 1, 0, "checkpoint.jws の署名を検証できません: "+err.Error(), "checkpoint.jws does not verify: "+err.Error())
		return
	}
	head, found := v.ckpts[p.Seq]
	switch {
	case !found && p.Seq >= v.lastSeq:
		v.problem(lastFile, 0, v.lastSeq+1, fmt.Sprintf("末尾が切り詰められています: checkpoint.jws が示すチェックポイント seq %d がなく、証跡は seq %d で終わっています", p.Seq+1, v.lastSeq),
			fmt.Sprintf("the tail was truncated: checkpoint.jws names checkpoint seq %d but the trail ends at seq %d", p.Seq+1, v.lastSeq))
	case !found:
		v.problem(headFile, 1, p.Seq+1, "checkpoint.jws のチェックポイントが証跡の中にありません", "the checkpoint in checkpoint.jws is not in the trail")
	case head != p.Head:
		v.problem(headFile, 1, p.Seq+1, "checkpoint.jws の連鎖の先頭が証跡と一致しません", "checkpoint.jws's chain head does not match the trail")
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// scanLines calls fn for every line of the file at path, without its
// newline, with its offset and 1-based number; terminated is false for a
// last line without a newline. fn returns false to stop. Lines longer than
// maxLine are passed cut to maxLine bytes (they are never valid records) but
// their offsets stay right.
func scanLines(path string, fn func(line []byte, off int64, n int, terminated bool) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var off, lineStart int64
	n := 0
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if long == nil {
				lineStart = off
				long = []byte{}
			}
			long = append(long, chunk[:min(len(chunk), max(0, maxLine-len(long)))]...)
			off += int64(len(chunk))
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if len(chunk) == 0 && long == nil {
			return nil
		}
		terminated := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		line := chunk
		if terminated {
			line = chunk[:len(chunk)-1]
		}
		start := off
		if long != nil {
			start = lineStart
			long = append(long, line[:min(len(line), max(0, maxLine-len(long)))]...)
			line = long
		}
		n++
		off += int64(len(chunk))
		if !fn(line, start, n, terminated) {
			return nil
		}
		long = nil
		if !terminated {
			return nil
		}
	}
}
