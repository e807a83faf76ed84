package ldaptest_test

import (
	"testing"

	"github.com/sekisho/sekisho/directory/ldaptest"
)

// A test starts the server and reads its settings.
func Example() {
	test := func(t *testing.T) {
		s := ldaptest.Start(t)
		cfg := s.Config()
		_ = cfg.Directory.LDAP.URL // ldap://127.0.0.1:PORT with start_tls: true
	}
	_ = test
}
