package store_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every store's goroutines (listeners, subscriptions, pools) end with
// Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
