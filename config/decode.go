package config

import (
	"encoding"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds how many YAML nodes one file may expand to, so that a
// file of nested aliases ("billion laughs") cannot exhaust memory or time.
const maxNodes = 100_000

// decoder walks a yaml.Node tree into Go values by reflection, following
// the yaml struct tags. Unlike yaml.Node.Decode it reports every problem
// with the key path (not only the line), refuses unknown and duplicate keys
// everywhere, keeps going after an error, and records where each key was,
// so that validation can name lines too.
type decoder struct {
	file string
	errs *Errors
	// line of each key path seen: the line of the mapping key, or of the
	// sequence item.
	lines map[string]int
	// bad holds the paths that failed to decode; validation stays quiet
	// about them and their children, so one mistake gives one message.
	bad   map[string]bool
	nodes int
	// exhausted is set once maxNodes is passed; decoding stops.
	exhausted bool
}

func newDecoder(file string, errs *Errors) *decoder {
	return &decoder{file: file, errs: errs, lines: map[string]int{}, bad: map[string]bool{}}
}

// stopped reports whether decoding should end early: the node budget is
// spent or enough errors have been found.
func (d *decoder) stopped() bool { return d.exhausted || d.errs.full() }

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.errs.add(d.file, n.Line, path, format, args...)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	zonesType    = reflect.TypeFor[Zones]()
	textType     = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// resolve follows aliases and counts nodes against maxNodes. It returns nil
// when the budget is spent.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 100 {
			d.fail(n, path, "alias chain too long (エイリアスの連鎖が長すぎます)")
			return nil
		}
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	d.nodes++
	if d.nodes > maxNodes {
		if !d.exhausted {
			d.exhausted = true
			d.fail(n, path, "file expands to more than %d YAML nodes (aliases?) (YAML の要素数が多すぎます)", maxNodes)
		}
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decode stores n into v (which must be settable), reporting problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n = d.resolve(n, path); n == nil {
		return
	}
	if isNull(n) {
		return // an empty value keeps the default
	}
	t := v.Type()
	switch {
	case t == durationType:
		d.duration(n, v, path)
		return
	case t == prefixType:
		if s, ok := d.scalar(n, path, "a network prefix such as 10.1.0.0/16 (CIDR 形式のネットワーク)"); ok {
			p, err := ParsePrefix(s)
			if err != nil {
				d.fail(n, path, "%v", err)
				return
			}
			v.Set(reflect.ValueOf(p))
		}
		return
	case t == zonesType:
		d.zones(n, v, path)
		return
	case t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(textType):
		if s, ok := d.scalar(n, path, "a text value (文字列)"); ok {
			if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				d.fail(n, path, "%v (値が不正です)", err)
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string (文字列)"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n, path, "want true or false, got %s (true か false を指定してください)", describe(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := d.integer(n, path)
		if ok && v.OverflowInt(i) {
			d.fail(n, path, "%s is out of range (値が範囲外です)", n.Value)
			return
		}
		if ok {
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := d.integer(n, path)
		if ok && (i < 0 || v.OverflowUint(uint64(i))) {
			d.fail(n, path, "%s is out of range (値が範囲外です)", n.Value)
			return
		}
		if ok {
			v.SetUint(uint64(i))
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
			d.fail(n, path, "want a number, got %s (数値を指定してください)", describe(n))
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || math.IsNaN(f) {
			d.fail(n, path, "%q is not a number (数値ではありません)", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// A field type this decoder does not know: a programming error in
		// config.go, reported rather than panicking.
		d.fail(n, path, "internal: cannot decode into %s (内部エラー)", t)
	}
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if len(n.Value) > 40 {
			return strconv.Quote(n.Value[:40] + "…")
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// scalar returns the text of a scalar node; what names the expected value.
func (d *decoder) scalar(n *yaml.Node, path, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want %s, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

var digitsRE = regexp.MustCompile(`^[-+]?[0-9_]+$`)

func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && !digitsRE.MatchString(n.Value)) {
		d.fail(n, path, "want a whole number, got %s (整数を指定してください)", describe(n))
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil {
		d.fail(n, path, "%q is not a whole number in range (整数として読めません)", n.Value)
		return 0, false
	}
	return i, true
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, `a duration such as "30m" or "10h" (期間)`)
	if !ok {
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil && strings.HasSuffix(s, "d") {
		d.fail(n, path, `%q: days are not a unit; write hours, e.g. "720h" for 30 days (日数は使えません。"720h" のように時間で書いてください)`, s)
		return
	}
	if err != nil {
		d.fail(n, path, `%q is not a duration; write it like "90s", "30m" or "10h" (期間は "30m" や "10h" のように書いてください)`, s)
		return
	}
	if dur < 0 {
		d.fail(n, path, "%s is negative (負の期間は指定できません)", s)
		return
	}
	v.SetInt(int64(dur))
}

// structure decodes a mapping into a struct, by yaml tags.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of keys, got %s (キーと値の組を指定してください)", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content) && !d.stopped(); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, path, seen)
		if !ok {
			continue
		}
		sub := join(path, key)
		d.lines[sub] = k.Line
		idx, known := fields[key]
		if !known {
			hint := ""
			if near := closest(key, fields); near != "" {
				hint = fmt.Sprintf("; did you mean %q?", near)
				// The intended key is probably this one: stay quiet
				// about it being missing.
				d.bad[join(path, near)] = true
			}
			d.fail(k, sub, "unknown key%s (不明なキーです)", hint)
			continue
		}
		d.decode(val, v.Field(idx), sub)
	}
}

// key reads one mapping key, refusing non-scalar, merge and duplicate keys.
func (d *decoder) key(k *yaml.Node, path string, seen map[string]bool) (string, bool) {
	if k.Kind == yaml.AliasNode {
		if k = d.resolve(k, path); k == nil {
			return "", false
		}
	}
	if k.Kind != yaml.ScalarNode {
		d.fail(k, path, "a key must be plain text, got %s (キーは文字列で書いてください)", describe(k))
		return "", false
	}
	if k.ShortTag() == "!!merge" {
		d.fail(k, path, "merge keys (<<) are not supported (マージキー << は使えません)")
		return "", false
	}
	if seen[k.Value] {
		d.fail(k, join(path, k.Value), "duplicate key (キーが重複しています)")
		return "", false
	}
	seen[k.Value] = true
	return k.Value, true
}

// mapping decodes a YAML mapping into a map with string keys. An entry
// already in the map (a default) is decoded into, so a file overrides a
// default field by field.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(n, path, "internal: map key type %s (内部エラー)", t.Key())
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s (キーと値の組を指定してください)", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content) && !d.stopped(); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, path, seen)
		if !ok {
			continue
		}
		sub := join(path, key)
		d.lines[sub] = k.Line
		elem := reflect.New(t.Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(key).Convert(t.Key())); old.IsValid() {
			elem.Set(old)
		}
		d.decode(val, elem, sub)
		v.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), elem)
	}
}

// sequence decodes a YAML list into a slice, replacing what was there.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want a list, got %s (リストを指定してください)", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if d.stopped() {
			break
		}
		sub := fmt.Sprintf("%s[%d]", path, i)
		d.lines[sub] = item.Line
		d.decode(item, s.Index(i), sub)
	}
	v.Set(s)
}

// zones decodes the zones mapping (name → list of prefixes) in file order.
func (d *decoder) zones(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of zone name to prefixes, got %s (ゾーン名とネットワークの組を指定してください)", describe(n))
		return
	}
	var zones Zones
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content) && !d.stopped(); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name, ok := d.key(k, path, seen)
		if !ok {
			continue
		}
		sub := join(path, name)
		d.lines[sub] = k.Line
		z := Zone{Name: name}
		d.decode(val, reflect.ValueOf(&z.Prefixes).Elem(), sub)
		zones = append(zones, z)
	}
	v.Set(reflect.ValueOf(zones))
}

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// closest returns the known key nearest to an unknown one, or "".
func closest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	for name := range fields {
		if dist := editDistance(strings.ToLower(key), name); dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ParsePrefix parses a CIDR prefix; a bare address means that one host
// (/32 or /128). A prefix with host bits set ("10.1.2.3/16") is refused as
// ambiguous. IPv4-mapped IPv6 addresses are unmapped.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or prefix (IP アドレスまたは CIDR ではありません)", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zoned addresses are not allowed (ゾーン付きアドレスは使えません)", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix such as 10.1.0.0/16 (CIDR 形式ではありません)", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s? (ホスト部が 0 ではありません)", s, p.Masked())
	}
	return p, nil
}
