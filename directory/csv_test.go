package directory_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding/japanese"

	"github.com/sekisho/sekisho/directory"
)

var testRoles = directory.NewRoles("財務", "福祉", "税務", "管理者")

const jaHeader = "職員番号,氏名,所属,ロール,状態,発令日\n"

func TestParseCSVJapaneseAndEnglishHeaders(t *testing.T) {
	jst := time.FixedZone("JST", 9*3600)
	want := []*directory.Entry{
		{ID: "sato", DisplayName: "佐藤 花子", Department: "福祉課", Roles: []string{"福祉"}, Where: "t.csv:2"},
		{ID: "suzuki", DisplayName: "鈴木 一郎", Department: "財務課", Roles: []string{"管理者", "財務"}, Disabled: true,
			Effective: time.Date(2027, 4, 1, 0, 0, 0, 0, jst), Where: "t.csv:3"},
	}
	for name, text := range map[string]string{
		"japanese":                      jaHeader + "sato,佐藤 花子,福祉課,福祉,有効,\nsuzuki,鈴木 一郎,財務課,財務;管理者,無効,2027-04-01\n",
		"english":                       "id,name,department,roles,status,effective\nsato,佐藤 花子,福祉課,福祉,active,\nsuzuki,鈴木 一郎,財務課,財務|管理者,disabled,2027/4/1\n",
		"mixed, reordered, spaces, BOM": "\ufeff ID , 状態,氏名,Roles,所属,Effective_Date\n sato ,active,佐藤 花子,role:福祉,　福祉課　,\nsuzuki,退職,鈴木 一郎, 財務 | 管理者 |,財務課,2027-04-01\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			src, err := directory.ParseCSV("t.csv", []byte(text), directory.CSVOptions{Roles: testRoles, Location: jst})
			if err != nil {
				t.Fatalf("ParseCSV: %v", err)
			}
			if diff := cmp.Diff(want, src.Entries); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCSVShiftJIS(t *testing.T) {
	text := jaHeader + "sato,佐藤 花子,福祉課,福祉,有効,2027-04-01\r\ntakahashi,髙橋 ①,税務課,税務,在職,\r\n"
	sjis, err := japanese.ShiftJIS.NewEncoder().Bytes([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{"", directory.EncodingAuto, directory.EncodingShiftJIS, "cp932"} {
		src, err := directory.ParseCSV("sjis.csv", sjis, directory.CSVOptions{Encoding: enc, Roles: testRoles})
		if err != nil {
			t.Fatalf("encoding %q: %v", enc, err)
		}
		if len(src.Entries) != 2 || src.Entries[0].DisplayName != "佐藤 花子" || src.Entries[1].DisplayName != "髙橋 ①" || src.Entries[1].Department != "税務課" {
			t.Errorf("encoding %q: entries %+v %+v", enc, src.Entries[0], src.Entries[1])
		}
	}
	// Forced UTF-8 on a Shift_JIS file names the first bad line.
	_, err = directory.ParseCSV("sjis.csv", sjis, directory.CSVOptions{Encoding: "utf8", Roles: testRoles})
	if err == nil || !strings.HasPrefix(err.Error(), "sjis.csv:1: UTF-8 として読めない文字があります") {
		t.Errorf("sjis read as utf8: %v", err)
	}
	// Bytes that are neither.
	bad := append([]byte("id,name,department,roles,status\na,x,y,z,active\n"), 0x82, 0xff, '\n')
	_, err = directory.ParseCSV("bad.csv", bad, directory.CSVOptions{Roles: testRoles})
	if err == nil || !strings.HasPrefix(err.Error(), "bad.csv:3: UTF-8 でも Shift_JIS でもない文字があります") {
		t.Errorf("garbage: %v", err)
	}
}

// Every kind of bad row is reported with its line and column, all at once.
func TestParseCSVErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"empty file", "", []string{"t.csv:1: 見出し行がありません (no header row)"}},
		{"unknown column", "職員番号,氏名,所属,ロール,状態,内線\n", []string{
			"t.csv:1: 内線: 不明な列です。使える列: 職員番号, 氏名, 所属, ロール, 状態, 発令日 (unknown column; use id, name, department, roles, status, effective)"}},
		{"duplicate column", "id,氏名,所属,ロール,状態,職員番号\n", []string{`t.csv:1: 職員番号: 列 "id" と同じ列です (same column as "id")`}},
		{"missing column", "id,name,department\n", []string{
			"t.csv:1: 列 ロール (roles) がありません (missing column roles)",
			"t.csv:1: 列 状態 (status) がありません (missing column status)"}},
		{"rows", jaHeader +
			"sato,佐藤,財務課,財務,有効,\n" +
			",名無し,財務課,財務,有効,\n" +
			"bad id,x,財務課,財務,有効,\n" +
			"a1,,財務課,財務,有効,\n" +
			"a2,x,財務課,経理,有効,\n" +
			"a3,x,財務課,財務,休み,\n" +
			"a4,x,財務課,財務,有効,4月1日\n" +
			"a5,x,財務課\n" +
			"sato,佐藤,福祉課,福祉,有効,\n" +
			"a6,x\x07y,財務課,財務,有効,\n" +
			"a7,x,財務課,財務,有効,1999-04-01\n",
			[]string{
				"t.csv:3: 職員番号: 職員番号が空です (empty id)",
				`t.csv:4: 職員番号: "bad id" は職員番号に使えません。英数字と . _ @ - で64文字まで (not a valid id: letters, digits, . _ @ -, at most 64)`,
				"t.csv:5: 氏名: 氏名が空です (empty name)",
				`t.csv:6: ロール: ロール "経理" は定義されていません (unknown role; known: 福祉, 税務, 管理者, 財務)`,
				`t.csv:7: 状態: 状態 "休み" は 有効/active か 無効/disabled で書いてください (status must be active or disabled)`,
				`t.csv:8: 発令日: 発令日 "4月1日" は 2027-04-01 の形で書いてください (effective date must look like 2027-04-01)`,
				"t.csv:9: 列の数が 3 です。見出しは 6 列です (3 fields, the header has 6)",
				"t.csv:10: 職員番号: 職員番号 sato が 2 行目と重複しています (duplicate id, first on line 2)",
				"t.csv:11: 氏名: contains the character U+0007 (使えない文字 U+0007 が含まれています)",
				`t.csv:12: 発令日: 発令日 "1999-04-01" は 2027-04-01 の形で書いてください (effective date must look like 2027-04-01)`,
			}},
		{"quote error", jaHeader + "sato,佐藤,財務課,財務,有効,\nx,\"unterminated,財務課,財務,有効,\n", []string{
			`t.csv:3: CSV の書式が不正です: extraneous or missing " in quoted-field (CSV syntax error)`}},
		{"quoted newline keeps line numbers", jaHeader + "sato,\"佐藤\n花子\",財務課,財務,有効,\nx,y,財務課,経理,有効,\n", []string{
			"t.csv:2: 氏名: contains the character U+000A (使えない文字 U+000A が含まれています)",
			`t.csv:4: ロール: ロール "経理" は定義されていません (unknown role; known: 福祉, 税務, 管理者, 財務)`}},
		{"encoding", jaHeader, []string{`t.csv: 文字コード "euc-jp" は使えません。auto, utf8, sjis のいずれかです (unknown encoding)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := directory.CSVOptions{Roles: testRoles}
			if tt.name == "encoding" {
				opts.Encoding = "euc-jp"
			}
			src, err := directory.ParseCSV("t.csv", []byte(tt.text), opts)
			if err == nil {
				t.Fatalf("no error; entries %v", src.Entries)
			}
			var re *directory.RowErrors
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not *RowErrors: %v", err, err)
			}
			if diff := cmp.Diff(strings.Join(tt.want, "\n"), err.Error()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
