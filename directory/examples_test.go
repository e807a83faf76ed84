package directory_test

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/directory"
)

// The shipped examples stay valid: both CSV files (UTF-8 and Shift_JIS)
// parse to the same entries, and the directory: section loads.
func TestShippedExamples(t *testing.T) {
	dir := filepath.Join("..", "examples", "directory")
	roles := directory.NewRoles("財務", "財務管理者", "福祉", "税務", "情報管理者")
	read := func(name string) []*directory.Entry {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "jinji-2027-04-sjis.csv" && utf8.Valid(data) {
			t.Fatalf("%s is not Shift_JIS", name)
		}
		src, err := directory.ParseCSV("x.csv", data, directory.CSVOptions{Roles: roles})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return src.Entries
	}
	utf, sjis := read("jinji-2027-04.csv"), read("jinji-2027-04-sjis.csv")
	if len(utf) != 6 {
		t.Errorf("%d entries, want 6", len(utf))
	}
	if diff := cmp.Diff(utf, sjis); diff != "" {
		t.Errorf("UTF-8 and Shift_JIS examples differ (-utf8 +sjis):\n%s", diff)
	}
	yaml, err := os.ReadFile(filepath.Join(dir, "directory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("directory.yaml", append([]byte("server: {http_listen: \"127.0.0.1:0\"}\n"), yaml...))
	if err != nil {
		t.Fatalf("example configuration: %v", err)
	}
	if len(cfg.Directory.LDAP.Groups) != 4 || cfg.Directory.LDAP.IDAttribute != "sAMAccountName" {
		t.Errorf("example configuration decoded as %+v", cfg.Directory.LDAP)
	}
}
