//go:build fuzzseeds

package audit

// The seed writer runs only when asked for:
//
//	go test -tags fuzzseeds -run TestWriteFuzzSeeds .

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho/config"
)

// TestWriteFuzzSeeds regenerates the seed corpus from real trails signed
// with testdata/fuzz.key (go test -tags fuzzseeds -run TestWriteFuzzSeeds ./audit).
func TestWriteFuzzSeeds(t *testing.T) {
	key, err := filepath.Abs(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	seedDir := "testdata/fuzz/FuzzVerify"
	os.MkdirAll(seedDir, 0o755)
	write := func(name string, data []byte) {
		t.Helper()
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(seedDir, name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Audit{Dir: t.TempDir(), Key: key, CheckpointEvery: 3}
	writeTrail(t, cfg, 4)
	data := readAll(t, cfg.Dir)
	write("valid", data)
	write("truncated", data[:len(data)/2])
	write("edited", bytes.Replace(data, []byte(`"tanaka"`), []byte(`"tanakA"`), 1))
	// A sealed torn tail.
	names, _ := listFiles(cfg.Dir)
	f, _ := os.OpenFile(filepath.Join(cfg.Dir, names[0]), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":9,"ti`)
	f.Close()
	writeTrail(t, cfg, 1)
	write("torn-sealed", readAll(t, cfg.Dir))
}
