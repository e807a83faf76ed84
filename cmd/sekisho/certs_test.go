package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// certsTestMainEnv makes the test binary behave as the sekisho binary, so
// the scripts run the real command line (flags, exit codes, stderr) without
// a separate go build. init, not TestMain, so that other verbs' tests in
// this package stay free to define their own TestMain.
const certsTestMainEnv = "SEKISHO_CERTS_TEST_MAIN"

func init() {
	if os.Getenv(certsTestMainEnv) == "1" {
		main()
	}
}

func TestCertsScripts(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "certs"),
		Setup: func(env *testscript.Env) error {
			bin := filepath.Join(env.WorkDir, ".bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				return err
			}
			wrapper := "#!/bin/sh\n" + certsTestMainEnv + "=1 exec '" + exe + "' \"$@\"\n"
			if err := os.WriteFile(filepath.Join(bin, "sekisho"), []byte(wrapper), 0o755); err != nil {
				return err
			}
			env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			// [openssl] is true when the openssl binary exists; with
			// CI=true its absence fails the script instead of skipping.
			if cond == "openssl" {
				if _, err := exec.LookPath("openssl"); err == nil {
					return true, nil
				}
				if os.Getenv("CI") == "true" {
					t.Error("openssl not found (required when CI=true)")
				}
				return false, nil
			}
			return false, nil
		},
	})
}
