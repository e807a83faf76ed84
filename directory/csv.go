package directory

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
)

// Encodings a CSV file may be in.
const (
	EncodingAuto     = "auto" // UTF-8 (with or without BOM) if valid, else Shift_JIS
	EncodingUTF8     = "utf8"
	EncodingShiftJIS = "sjis" // Shift_JIS as Windows writes it (CP932)
)

// MaxCSVSize bounds an import file. A city's whole staff list is far
// smaller.
const MaxCSVSize = 32 << 20

// CSVOptions says how to read an import file.
type CSVOptions struct {
	// Encoding is EncodingAuto (or ""), EncodingUTF8 or EncodingShiftJIS;
	// "utf-8", "shift_jis", "cp932" and "windows-31j" are accepted too.
	Encoding string
	// Roles are the known role names; a row naming another is an error.
	// Nil skips the check.
	Roles Roles
	// Location is the time zone in which an effective date begins.
	// Default Asia/Tokyo.
	Location *time.Location
}

// Column keys and the header names accepted for each, Japanese and English.
const (
	colID         = "id"
	colName       = "name"
	colDepartment = "department"
	colRoles      = "roles"
	colStatus     = "status"
	colEffective  = "effective"
)

var headerNames = map[string]string{
	"職員番号": colID, "職員id": colID, "id": colID, "user": colID, "user_id": colID, "userid": colID,
	"氏名": colName, "表示名": colName, "name": colName, "display_name": colName, "displayname": colName,
	"所属": colDepartment, "所属課": colDepartment, "部署": colDepartment, "department": colDepartment, "dept": colDepartment,
	"ロール": colRoles, "役割": colRoles, "roles": colRoles, "role": colRoles,
	"状態": colStatus, "status": colStatus,
	"発令日": colEffective, "異動日": colEffective, "effective": colEffective, "effective_date": colEffective, "date": colEffective,
}

// required columns, in the order the header error names them.
var requiredColumns = []struct{ key, ja string }{
	{colID, "職員番号"}, {colName, "氏名"}, {colDepartment, "所属"}, {colRoles, "ロール"}, {colStatus, "状態"},
}

var statusWords = map[string]bool{ // value: disabled
	"active": false, "enabled": false, "有効": false, "在職": false,
	"disabled": true, "inactive": true, "無効": true, "停止": true, "退職": true, "休職": true,
}

// maxRows bounds the rows of one file.
const maxRows = 200_000

// ParseCSV reads an import file: a header row naming the columns (職員番号
// or id, 氏名 or name, 所属 or department, ロール or roles, 状態 or status,
// and optionally 発令日 or effective), then one row per person. It returns
// *RowErrors naming the line and column of every problem it found; when
// it does, the file must not be applied at all.
func ParseCSV(name string, data []byte, opts CSVOptions) (*Source, error) {
	if len(data) > MaxCSVSize {
		return nil, &RowErrors{List: []*RowError{{File: name,
			Msg: fmt.Sprintf("ファイルが大きすぎます (file larger than %d MiB)", MaxCSVSize>>20)}}}
	}
	text, err := decodeText(name, data, opts.Encoding)
	if err != nil {
		return nil, err
	}
	loc := opts.Location
	if loc == nil {
		loc = tokyo()
	}
	errs := &RowErrors{}
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true

	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		errs.add(name, 1, "", "見出し行がありません (no header row)")
		return nil, errs
	}
	if err != nil {
		return nil, csvSyntax(name, err)
	}
	cols := make([]string, len(header)) // column index → key
	names := make([]string, len(header))
	at := map[string]int{}
	for i, h := range header {
		names[i] = trim(h)
		key, ok := headerNames[strings.ToLower(names[i])]
		switch {
		case !ok:
			errs.add(name, 1, names[i], "不明な列です。使える列: 職員番号, 氏名, 所属, ロール, 状態, 発令日 (unknown column; use id, name, department, roles, status, effective)")
		case at[key] > 0:
			errs.add(name, 1, names[i], "列 %q と同じ列です (same column as %q)", names[at[key]-1], names[at[key]-1])
		default:
			at[key] = i + 1
			cols[i] = key
		}
	}
	for _, c := range requiredColumns {
		if at[c.key] == 0 {
			errs.add(name, 1, "", "列 %s (%s) がありません (missing column %s)", c.ja, c.key, c.key)
		}
	}
	if len(errs.List) > 0 {
		return nil, errs
	}

	src := &Source{Name: name}
	firstLine := map[string]int{}
	for rows := 0; ; rows++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e := csvSyntax(name, err)
			errs.List = append(errs.List, e.List...)
			return nil, errs
		}
		line, _ := r.FieldPos(0)
		if rows >= maxRows {
			errs.add(name, line, "", "行が多すぎます (more than %d rows)", maxRows)
			break
		}
		if blank(rec) {
			continue
		}
		if len(rec) != len(cols) {
			errs.add(name, line, "", "列の数が %d です。見出しは %d 列です (%d fields, the header has %d)", len(rec), len(cols), len(rec), len(cols))
			continue
		}
		e := &Entry{Where: fmt.Sprintf("%s:%d", name, line)}
		ok := true
		bad := func(col int, format string, args ...any) {
			errs.add(name, line, names[col], format, args...)
			ok = false
		}
		for i, raw := range rec {
			v := trim(raw)
			switch cols[i] {
			case colID:
				switch {
				case v == "":
					bad(i, "職員番号が空です (empty id)")
				case !userIDPattern.MatchString(v):
					bad(i, "%q は職員番号に使えません。英数字と . _ @ - で64文字まで (not a valid id: letters, digits, . _ @ -, at most 64)", v)
				default:
					e.ID = v
				}
			case colName:
				if v == "" {
					bad(i, "氏名が空です (empty name)")
				} else if msg := checkText(v); msg != "" {
					bad(i, "%s", msg)
				}
				e.DisplayName = v
			case colDepartment:
				if msg := checkText(v); msg != "" {
					bad(i, "%s", msg)
				}
				e.Department = v
			case colRoles:
				e.Roles = splitRoles(v)
				for _, role := range e.Roles {
					if msg := checkText(role); msg != "" {
						bad(i, "ロール %q: %s", role, msg)
					} else if opts.Roles != nil && !opts.Roles[role] {
						bad(i, "ロール %q は定義されていません (unknown role; known: %s)", role, strings.Join(opts.Roles.Sorted(), ", "))
					}
				}
			case colStatus:
				d, known := statusWords[strings.ToLower(v)]
				if !known {
					bad(i, "状態 %q は 有効/active か 無効/disabled で書いてください (status must be active or disabled)", v)
				}
				e.Disabled = d
			case colEffective:
				if v == "" {
					break
				}
				t, err := parseDate(v, loc)
				if err != nil {
					bad(i, "%v", err)
				}
				e.Effective = t
			}
		}
		if e.ID != "" {
			if first, dup := firstLine[e.ID]; dup {
				errs.add(name, line, names[at[colID]-1], "職員番号 %s が %d 行目と重複しています (duplicate id, first on line %d)", e.ID, first, first)
				ok = false
			} else {
				firstLine[e.ID] = line
			}
		}
		if ok {
			src.Entries = append(src.Entries, e)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return src, nil
}

// blank reports whether every field of rec is empty or spaces.
func blank(rec []string) bool {
	for _, f := range rec {
		if trim(f) != "" {
			return false
		}
	}
	return true
}

// csvSyntax turns an encoding/csv error into a RowErrors at its line.
func csvSyntax(name string, err error) *RowErrors {
	errs := &RowErrors{}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		errs.add(name, pe.Line, "", "CSV の書式が不正です: %v (CSV syntax error)", pe.Err)
	} else {
		errs.add(name, 0, "", "CSV を読めません: %v (reading CSV)", err)
	}
	return errs
}

// dateLayouts are the effective-date spellings accepted: ISO and what
// spreadsheet programs write.
var dateLayouts = []string{"2006-01-02", "2006/01/02", "2006/1/2", "2006-1-2"}

// parseDate reads an effective date as the first moment of that day in loc.
func parseDate(s string, loc *time.Location) (time.Time, error) {
	for _, l := range dateLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			if t.Year() < 2000 || t.Year() > 2200 {
				break
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("発令日 %q は 2027-04-01 の形で書いてください (effective date must look like 2027-04-01)", s)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decodeText returns data as UTF-8 text without a BOM.
func decodeText(name string, data []byte, enc string) (string, error) {
	switch strings.ToLower(enc) {
	case "", EncodingAuto:
		if bytes.HasPrefix(data, utf8BOM) || utf8.Valid(data) {
			return decodeUTF8(name, data)
		}
		return decodeShiftJIS(name, data)
	case EncodingUTF8, "utf-8":
		return decodeUTF8(name, data)
	case EncodingShiftJIS, "shift_jis", "shift-jis", "cp932", "windows-31j":
		return decodeShiftJIS(name, data)
	default:
		return "", &RowErrors{List: []*RowError{{File: name,
			Msg: fmt.Sprintf("文字コード %q は使えません。auto, utf8, sjis のいずれかです (unknown encoding)", enc)}}}
	}
}

func decodeUTF8(name string, data []byte) (string, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if !utf8.Valid(data) {
		return "", badBytes(name, data, firstInvalidUTF8(data), "UTF-8")
	}
	return string(data), nil
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

func decodeShiftJIS(name string, data []byte) (string, error) {
	out, err := japanese.ShiftJIS.NewDecoder().Bytes(data)
	if err != nil {
		return "", &RowErrors{List: []*RowError{{File: name, Msg: fmt.Sprintf("Shift_JIS として読めません: %v (not Shift_JIS)", err)}}}
	}
	// The decoder writes U+FFFD for a byte sequence Shift_JIS does not
	// have; report the line it is on.
	if i := bytes.IndexRune(out, utf8.RuneError); i >= 0 {
		line := 1 + bytes.Count(out[:i], []byte("\n"))
		return "", &RowErrors{List: []*RowError{{File: name, Line: line,
			Msg: "UTF-8 でも Shift_JIS でもない文字があります (neither UTF-8 nor Shift_JIS; use --encoding)"}}}
	}
	return string(out), nil
}

func badBytes(name string, data []byte, at int, enc string) error {
	line := 1 + bytes.Count(data[:at], []byte("\n"))
	return &RowErrors{List: []*RowError{{File: name, Line: line,
		Msg: fmt.Sprintf("%s として読めない文字があります (not valid %s; try --encoding sjis)", enc, enc)}}}
}

// tokyo is Asia/Tokyo, or a fixed +09:00 zone when the system has no
// time zone database (Japan has no daylight saving time).
func tokyo() *time.Location {
	if loc, err := time.LoadLocation("Asia/Tokyo"); err == nil {
		return loc
	}
	return time.FixedZone("JST", 9*60*60)
}
