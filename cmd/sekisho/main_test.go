package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scripts run "sekisho" as a command: the test
// binary re-executes itself as the real main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sekisho": main,
	})
}

// TestScripts runs the CLI scripts in testdata/<verb>/*.txtar, one subtest
// per verb directory, as a user would run the binary. A verb's owner adds
// scripts by creating its own directory; nothing here needs to change.
func TestScripts(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		scripts, _ := filepath.Glob(filepath.Join("testdata", d.Name(), "*.txtar"))
		if len(scripts) == 0 {
			continue
		}
		ran++
		t.Run(d.Name(), func(t *testing.T) {
			testscript.Run(t, testscript.Params{Dir: filepath.Join("testdata", d.Name())})
		})
	}
	if ran == 0 {
		t.Fatal("no scripts under testdata/*/")
	}
}
