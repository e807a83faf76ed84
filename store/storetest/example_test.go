package storetest_test

import (
	"testing"

	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

// A store implementation's test runs the suite against fresh stores; here
// PostgreSQL, each subtest in a schema of its own.
func ExampleRun() {
	_ = func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			st, err := store.Open(t.Context(), "postgres", storetest.PostgresDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	}
}
