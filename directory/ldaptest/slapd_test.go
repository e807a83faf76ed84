package ldaptest_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/sekisho/sekisho/directory/ldaptest"
)

// The server answers on both URLs with a certificate from CAFile, lets
// the reader read the people, and shows anonymous clients nothing.
func TestStart(t *testing.T) {
	s := ldaptest.Start(t)
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	people := func(c *ldap.Conn) int {
		res, err := c.Search(ldap.NewSearchRequest("ou=people,"+s.Suffix, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 5, false,
			"(objectClass=inetOrgPerson)", []string{"uid"}, nil))
		if err != nil {
			return -1
		}
		return len(res.Entries)
	}

	anon, err := ldap.DialURL(s.LDAPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if n := people(anon); n > 0 {
		t.Errorf("anonymous client saw %d people", n)
	}
	// A fresh connection for StartTLS: slapd may still count the
	// anonymous search as outstanding just after answering it, and
	// refuses StartTLS then ("operations are outstanding").
	c, err := ldap.DialURL(s.LDAPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(tc); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Bind(s.ReaderDN, ldaptest.ReaderPassword); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if n := people(c); n != 4 {
		t.Errorf("reader saw %d people, want 4", n)
	}

	c2, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(tc))
	if err != nil {
		t.Fatalf("LDAPS: %v", err)
	}
	defer c2.Close()
	if err := c2.Bind(s.ReaderDN, "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("wrong password: %v", err)
	}
}
