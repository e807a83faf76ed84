package main

import (
	"fmt"
	"os"
	"os/exec"
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

// scriptConditions are the custom [conditions] scripts may use, besides
// testscript's built-in ones ([exec:prog], [short], [linux]…). Add yours.
var scriptConditions = map[string]func() bool{
	// openssl cross-checks what sekisho writes with an independent tool.
	"openssl": func() bool { _, err := exec.LookPath("openssl"); return err == nil },
}

func scriptCondition(cond string) (bool, error) {
	if f, ok := scriptConditions[cond]; ok {
		return f(), nil
	}
	return false, fmt.Errorf("unknown condition %q (add it to scriptConditions in main_test.go)", cond)
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
			testscript.Run(t, testscript.Params{
				Dir:       filepath.Join("testdata", d.Name()),
				Condition: scriptCondition,
			})
		})
	}
	if ran == 0 {
		t.Fatal("no scripts under testdata/*/")
	}
}
