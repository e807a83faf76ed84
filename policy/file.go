package policy

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// File is a parsed policy file: its syntax is valid, but it has not yet
// been checked against a configuration (route, class and zone names). See
// docs/policy.md for the format.
type File struct {
	Name       string
	Rules      []*Rule
	Groups     []Group
	Conditions []*Condition
	Holidays   []Holiday
}

// Rule is one allow, deny or stepup line.
type Rule struct {
	Line   int
	Effect Effect
	// Subjects: user ids, "role:R", "dept:D", "*" (any signed-in user) or
	// "anonymous". Objects: "route:R", "class:C", "segment:S" or "*".
	// Actions: read, write, export, admin or "*". A line may list several
	// alternatives separated by "|".
	Subjects, Objects, Actions []string
	// Conds must all hold (a "!" negates one).
	Conds []CondRef
	// Text is the line as written, without its comment.
	Text string

	pos string // "file:line"
}

// Pos is "file:line", the Decision.Rule spelling.
func (r *Rule) Pos() string { return r.pos }

// CondRef names a condition in a rule.
type CondRef struct {
	Name   string
	Negate bool
}

func (c CondRef) String() string {
	if c.Negate {
		return "!" + c.Name
	}
	return c.Name
}

// Group is a "group, MEMBER, PARENT" line: MEMBER inherits every rule of
// PARENT (role inheritance, evaluated by Casbin's role manager).
type Group struct {
	Line           int
	Member, Parent string
}

// Condition is a named set of tests that all must hold.
type Condition struct {
	Line  int
	Name  string
	Tests []Test
	// Source is where it was defined: "policy.csv:7" or "config".
	Source string
}

// Holiday is a closed day for the "holiday" test.
type Holiday struct {
	Line int
	Date string // YYYY-MM-DD
	Name string
}

// Test is one key=value test of a condition.
type Test struct {
	Key    string
	Values []string
	Text   string

	from, to int     // hours: minutes since midnight, [from, to)
	days     [7]bool // days: by time.Weekday
	age      time.Duration
	yes      bool // holiday=yes
}

// Test keys.
const (
	testZone       = "zone"
	testHours      = "hours"
	testDays       = "days"
	testHoliday    = "holiday"
	testAMR        = "amr"
	testMaxAuthAge = "max_auth_age"
	testDevice     = "device"
	testRoute      = "route"
	testClass      = "class"
	testSegment    = "segment"
	testAction     = "action"
	testMethod     = "method"
	testPath       = "path"
)

// isAuthTest reports whether re-authentication can make the test hold;
// such tests in a stepup rule ask for step-up instead of failing the rule.
func (t *Test) isAuthTest() bool { return t.Key == testAMR || t.Key == testMaxAuthAge }

// Error is a policy file error at a line. Line 0 means the whole file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

const maxErrors = 20

type parser struct {
	f    *File
	errs []error
}

func (p *parser) errorf(line int, format string, args ...any) {
	if len(p.errs) < maxErrors {
		p.errs = append(p.errs, &Error{File: p.f.Name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
}

// Parse reads a policy file. name is used in positions ("policy.csv:12").
// All syntax errors are returned joined, each naming its file and line.
func Parse(name string, data []byte) (*File, error) {
	f, errs := parse(name, data)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// parse returns what could be parsed and every syntax error, so that
// compile can report mistakes of meaning in the same pass. The file is nil
// only when nothing could be read.
func parse(name string, data []byte) (*File, []error) {
	p := &parser{f: &File{Name: name}}
	if !utf8.Valid(data) {
		return nil, []error{&Error{File: name, Msg: "UTF-8 ではありません (file is not valid UTF-8)"}}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // Excel writes a BOM
	seenCond := map[string]int{}
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		text := raw
		if j := strings.IndexByte(text, '#'); j >= 0 {
			text = text[:j]
		}
		text = strings.TrimSpace(strings.TrimSuffix(text, "\r"))
		if text == "" {
			continue
		}
		fields := strings.Split(text, ",")
		for k := range fields {
			fields[k] = strings.TrimSpace(fields[k])
		}
		switch kind := fields[0]; kind {
		case "allow", "deny", "stepup", "step-up":
			p.rule(line, text, fields)
		case "group", "g":
			if len(fields) != 3 {
				p.errorf(line, "group 行は「group, メンバー, 親」の3項目です (group takes member and parent; got %d fields)", len(fields))
				continue
			}
			if err := checkSubject(fields[1]); err != nil {
				p.errorf(line, "メンバー %q: %v", fields[1], err)
				continue
			}
			if err := checkSubject(fields[2]); err != nil || fields[2] == "*" || fields[2] == "anonymous" {
				p.errorf(line, "親 %q はロール・所属・利用者名にしてください (parent must be a role, department or user)", fields[2])
				continue
			}
			if fields[1] == fields[2] {
				p.errorf(line, "%q が自分自身を親にしています (member is its own parent)", fields[1])
				continue
			}
			p.f.Groups = append(p.f.Groups, Group{Line: line, Member: fields[1], Parent: fields[2]})
		case "condition", "cond":
			if len(fields) < 3 {
				p.errorf(line, "condition 行は「condition, 名前, 条件…」です (condition takes a name and tests)")
				continue
			}
			name := fields[1]
			if !validName(name) {
				p.errorf(line, "条件名 %q は使えません (invalid condition name)", name)
				continue
			}
			if prev, ok := seenCond[name]; ok {
				p.errorf(line, "条件 %q は %d 行目で定義済みです (condition already defined at line %d)", name, prev, prev)
				continue
			}
			seenCond[name] = line
			c, err := parseTests(strings.Join(fields[2:], " "))
			if err != nil {
				p.errorf(line, "条件 %q: %v", name, err)
				continue
			}
			c.Name, c.Line, c.Source = name, line, posOf(p.f.Name, line)
			p.f.Conditions = append(p.f.Conditions, c)
		case "holiday":
			if len(fields) < 2 || len(fields) > 3 {
				p.errorf(line, "holiday 行は「holiday, YYYY-MM-DD, 名称」です (holiday takes a date and an optional name)")
				continue
			}
			if _, err := time.Parse(time.DateOnly, fields[1]); err != nil {
				p.errorf(line, "日付 %q は YYYY-MM-DD ではありません (date must be YYYY-MM-DD)", fields[1])
				continue
			}
			h := Holiday{Line: line, Date: fields[1]}
			if len(fields) == 3 {
				h.Name = fields[2]
			}
			p.f.Holidays = append(p.f.Holidays, h)
		default:
			p.errorf(line, "種別 %q は使えません。allow, deny, stepup, group, condition, holiday のいずれかです (unknown line kind)", kind)
		}
	}
	return p.f, p.errs
}

func posOf(file string, line int) string { return file + ":" + strconv.Itoa(line) }

func (p *parser) rule(line int, text string, fields []string) {
	if len(fields) < 4 || len(fields) > 5 {
		p.errorf(line, "規則は「効果, 主体, 対象, 操作, 条件」の4〜5項目です (a rule has effect, subject, object, action and optional conditions; got %d fields)", len(fields))
		return
	}
	eff, _ := ParseEffect(fields[0])
	r := &Rule{Line: line, Effect: eff, Text: text, pos: posOf(p.f.Name, line)}
	var ok = true
	r.Subjects, ok = p.alternatives(line, "主体 (subject)", fields[1], checkSubject)
	if !ok {
		return
	}
	r.Objects, ok = p.alternatives(line, "対象 (object)", fields[2], checkObject)
	if !ok {
		return
	}
	r.Actions, ok = p.alternatives(line, "操作 (action)", fields[3], checkAction)
	if !ok {
		return
	}
	if len(fields) == 5 && fields[4] != "" && fields[4] != "-" {
		for _, part := range strings.Split(fields[4], "&") {
			part = strings.TrimSpace(part)
			ref := CondRef{}
			if strings.HasPrefix(part, "!") {
				ref.Negate = true
				part = strings.TrimSpace(part[1:])
			}
			if !validName(part) {
				p.errorf(line, "条件 %q は使えません。名前を「&」でつなぎます (invalid condition %q; join names with &)", part, part)
				return
			}
			ref.Name = part
			r.Conds = append(r.Conds, ref)
		}
	}
	p.f.Rules = append(p.f.Rules, r)
}

func (p *parser) alternatives(line int, what, field string, check func(string) error) ([]string, bool) {
	var out []string
	for _, v := range strings.Split(field, "|") {
		v = strings.TrimSpace(v)
		if err := check(v); err != nil {
			p.errorf(line, "%s %q: %v", what, v, err)
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// validName: letters (any script), digits, '_', '-', '.', '@'; no spaces
// or the separators , | & ! # : =.
func validName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.' || r == '@' {
			continue
		}
		return false
	}
	return true
}

var errEmpty = errors.New("空です (empty)")

func checkSubject(s string) error {
	switch {
	case s == "":
		return errEmpty
	case s == "*" || s == "anonymous":
		return nil
	case strings.HasPrefix(s, "role:"), strings.HasPrefix(s, "dept:"):
		if !validName(s[5:]) {
			return errors.New("名前に使えない文字があります (invalid name)")
		}
		return nil
	case validName(s):
		return nil
	}
	return errors.New("利用者ID、role:名前、dept:名前、* のいずれかです (use a user id, role:NAME, dept:NAME or *)")
}

func checkObject(s string) error {
	if s == "*" {
		return nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || (kind != "route" && kind != "class" && kind != "segment") {
		return errors.New("route:名前、class:分類、segment:系統、* のいずれかです (use route:NAME, class:C, segment:S or *)")
	}
	if !validName(name) {
		return errors.New("名前に使えない文字があります (invalid name)")
	}
	return nil
}

func checkAction(s string) error {
	switch s {
	case "*", "read", "write", "export", "admin":
		return nil
	}
	return errors.New("read, write, export, admin, * のいずれかです (use read, write, export, admin or *)")
}

// ParseCondition parses the tests of a named condition written as in the
// policy file ("zone=chonai hours=08:30-17:15").
func ParseCondition(name, tests string) (*Condition, error) {
	if !validName(name) {
		return nil, fmt.Errorf("条件名 %q は使えません (invalid condition name)", name)
	}
	c, err := parseTests(tests)
	if err != nil {
		return nil, fmt.Errorf("条件 %q: %w", name, err)
	}
	c.Name = name
	return c, nil
}

func parseTests(s string) (*Condition, error) {
	c := &Condition{}
	for _, tok := range strings.Fields(s) {
		key, val, ok := strings.Cut(tok, "=")
		if !ok || val == "" {
			return nil, fmt.Errorf("%q は「キー=値」ではありません (a test is key=value)", tok)
		}
		t := Test{Key: key, Text: tok}
		sep := "|"
		if key == testAMR || key == testDevice {
			sep = "+"
		}
		for _, v := range strings.Split(val, sep) {
			if v == "" {
				return nil, fmt.Errorf("%q に空の値があります (empty value)", tok)
			}
			t.Values = append(t.Values, v)
		}
		if err := t.parse(); err != nil {
			return nil, fmt.Errorf("%q: %w", tok, err)
		}
		c.Tests = append(c.Tests, t)
	}
	if len(c.Tests) == 0 {
		return nil, errors.New("テストがありません (no tests)")
	}
	return c, nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"日": time.Sunday, "月": time.Monday, "火": time.Tuesday, "水": time.Wednesday,
	"木": time.Thursday, "金": time.Friday, "土": time.Saturday,
}

func (t *Test) parse() error {
	switch t.Key {
	case testZone, testRoute, testClass, testSegment:
		for _, v := range t.Values {
			if !validName(v) {
				return fmt.Errorf("名前 %q は使えません (invalid name)", v)
			}
		}
	case testAction:
		for _, v := range t.Values {
			if v == "*" || checkAction(v) != nil {
				return checkAction("?")
			}
		}
	case testMethod:
		for i, v := range t.Values {
			t.Values[i] = strings.ToUpper(v)
			if !validName(v) {
				return fmt.Errorf("メソッド %q は使えません (invalid method)", v)
			}
		}
	case testPath:
		for _, v := range t.Values {
			if !strings.HasPrefix(v, "/") {
				return fmt.Errorf("パス %q は / で始めます (path prefix must start with /)", v)
			}
		}
	case testHours:
		if len(t.Values) != 1 {
			return errors.New("時間帯は1つだけ書けます (one range per test; use another condition for more)")
		}
		a, b, ok := strings.Cut(t.Values[0], "-")
		from, err1 := clock(a)
		to, err2 := clock(b)
		if !ok || err1 != nil || err2 != nil {
			return errors.New("時間帯は HH:MM-HH:MM です (hours are HH:MM-HH:MM)")
		}
		if from == to {
			return errors.New("開始と終了が同じです (empty range)")
		}
		t.from, t.to = from, to
	case testDays:
		for _, v := range t.Values {
			a, b, isRange := strings.Cut(v, "-")
			da, ok1 := weekdays[a]
			db, ok2 := weekdays[b]
			if !isRange {
				db, ok2 = da, ok1
			}
			if !ok1 || !ok2 {
				return fmt.Errorf("曜日 %q は mon〜sun（または 月〜日）です (days are mon..sun)", v)
			}
			for d := da; ; d = (d + 1) % 7 {
				t.days[d] = true
				if d == db {
					break
				}
			}
		}
	case testHoliday:
		switch t.Values[0] {
		case "yes":
			t.yes = true
		case "no":
		default:
			return errors.New("holiday は yes か no です (holiday=yes or holiday=no)")
		}
		if len(t.Values) != 1 {
			return errors.New("holiday は yes か no です (holiday=yes or holiday=no)")
		}
	case testAMR:
		for _, v := range t.Values {
			if !validName(v) {
				return fmt.Errorf("認証方式 %q は使えません (invalid amr value)", v)
			}
		}
	case testMaxAuthAge:
		if len(t.Values) != 1 {
			return errors.New("期間は1つです (one duration)")
		}
		d, err := time.ParseDuration(t.Values[0])
		if err != nil || d <= 0 {
			return errors.New("期間は 15m や 1h のように書きます (a positive duration such as 15m or 1h)")
		}
		t.age = d
	case testDevice:
		for _, v := range t.Values {
			if v != "cert" && v != "registered" && v != "owned" {
				return fmt.Errorf("device は cert, registered, owned です (got %q)", v)
			}
		}
	default:
		return fmt.Errorf("キー %q は使えません。zone, hours, days, holiday, amr, max_auth_age, device, route, class, segment, action, method, path のいずれかです (unknown test)", t.Key)
	}
	return nil
}

func clock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 {
		return 0, errors.New("bad clock")
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, errors.New("bad clock")
	}
	return hh*60 + mm, nil
}
