package directory_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"

	"github.com/sekisho/sekisho/directory"
)

// FuzzParseCSV: any bytes give either entries that satisfy every rule the
// parser promises, or *RowErrors with line numbers; never a panic.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte(april))
	f.Add([]byte("\ufeffid,name,department,roles,status,effective\nsato,佐藤,福祉課,福祉|財務,active,2027/4/1\n"))
	f.Add([]byte(jaHeader + "sato,\"佐藤\n花子\",財務課,財務,有効,\n"))
	f.Add([]byte(jaHeader + "sato,\"unterminated,財務課,財務,有効,\n"))
	f.Add([]byte(jaHeader + "a,b\n\n \n,,,,,\n"))
	f.Add([]byte("職員番号,職員番号\n"))
	f.Add([]byte(""))
	f.Add([]byte{0x82, 0xa0, 0xff, '\n'})
	if sjis, err := japanese.ShiftJIS.NewEncoder().Bytes([]byte(april)); err == nil {
		f.Add(sjis)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := directory.ParseCSV("f.csv", data, directory.CSVOptions{Roles: testRoles})
		if err != nil {
			re, ok := err.(*directory.RowErrors)
			if !ok || len(re.List) == 0 {
				t.Fatalf("error %T %v is not a non-empty *RowErrors", err, err)
			}
			for _, e := range re.List {
				if e.File != "f.csv" || e.Line < 0 {
					t.Fatalf("bad location %+v", e)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range src.Entries {
			if e.ID == "" || seen[e.ID] || e.DisplayName == "" || strings.ContainsAny(e.ID, " ,\n") {
				t.Fatalf("bad entry %+v", e)
			}
			seen[e.ID] = true
			for _, s := range append([]string{e.DisplayName, e.Department}, e.Roles...) {
				if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\n\r") {
					t.Fatalf("bad text %q in %+v", s, e)
				}
			}
			for _, r := range e.Roles {
				if !testRoles[r] {
					t.Fatalf("unknown role %q accepted", r)
				}
			}
		}
	})
}
