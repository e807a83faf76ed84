package ldaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
)

// Server is a real OpenLDAP server started for one test.
type Server struct {
	Dir          string
	LDAPURL      string // ldap://127.0.0.1:P (StartTLS offered)
	LDAPSURL     string // ldaps://127.0.0.1:P
	CAFile       string // the CA that issued the server certificate
	OtherCA      string // a CA that did not
	Suffix       string
	ReaderDN     string
	PasswordFile string // file holding the reader's password
}

// Suffix is the directory's base.
const Suffix = "dc=example,dc=lg,dc=jp"

// ReaderPassword is the password of the read-only account ReaderDN.
const ReaderPassword = "yomitori-2027"

// LDIF is the city's directory: four staff under ou=people (one retired:
// employeeType 退職), three role groups, a read-only account, and one
// entry of another kind. The unmapped group keiri (sato) is nested in
// zaimu, and lists zaimu as a member too: a cycle.
const LDIF = `dn: dc=example,dc=lg,dc=jp
objectClass: dcObject
objectClass: organization
dc: example
o: Example City

dn: ou=people,dc=example,dc=lg,dc=jp
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=lg,dc=jp
objectClass: organizationalUnit
ou: groups

dn: cn=reader,dc=example,dc=lg,dc=jp
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: yomitori-2027

dn: uid=sato,ou=people,dc=example,dc=lg,dc=jp
objectClass: inetOrgPerson
uid: sato
cn: Sato Hanako
sn: Sato
displayName: 佐藤 花子
departmentNumber: 福祉課

dn: uid=suzuki,ou=people,dc=example,dc=lg,dc=jp
objectClass: inetOrgPerson
uid: suzuki
cn: 鈴木 一郎
sn: Suzuki
departmentNumber: 財務課

dn: uid=yamada,ou=people,dc=example,dc=lg,dc=jp
objectClass: inetOrgPerson
uid: yamada
cn: Yamada
sn: Yamada
displayName: 山田 太郎
departmentNumber: 財務課

dn: uid=tanaka,ou=people,dc=example,dc=lg,dc=jp
objectClass: inetOrgPerson
uid: tanaka
cn: Tanaka
sn: Tanaka
displayName: 田中 三郎
departmentNumber: 税務課
employeeType: 退職

dn: cn=printer,ou=people,dc=example,dc=lg,dc=jp
objectClass: device
cn: printer

dn: cn=fukushi,ou=groups,dc=example,dc=lg,dc=jp
objectClass: groupOfNames
cn: fukushi
member: uid=sato,ou=people,dc=example,dc=lg,dc=jp

dn: cn=zaimu,ou=groups,dc=example,dc=lg,dc=jp
objectClass: groupOfNames
cn: zaimu
member: UID=Suzuki, OU=People,dc=example,dc=lg,dc=jp
member: uid=yamada,ou=people,dc=example,dc=lg,dc=jp
member: cn=keiri,ou=groups,dc=example,dc=lg,dc=jp

dn: cn=keiri,ou=groups,dc=example,dc=lg,dc=jp
objectClass: groupOfNames
cn: keiri
member: uid=sato,ou=people,dc=example,dc=lg,dc=jp
member: CN=Zaimu,OU=Groups,dc=example,dc=lg,dc=jp

dn: cn=kanri,ou=groups,dc=example,dc=lg,dc=jp
objectClass: groupOfNames
cn: kanri
member: uid=yamada,ou=people,dc=example,dc=lg,dc=jp
`

// Start starts slapd on loopback ports with a generated slapd.conf,
// a server certificate from a generated CA, and LDIF loaded. Without
// slapd the test is skipped, or fails when $CI is "true".
func Start(t *testing.T) *Server {
	t.Helper()
	slapd, err := exec.LookPath("slapd")
	if err != nil {
		slapd = "/usr/sbin/slapd"
	}
	slapadd, err2 := exec.LookPath("slapadd")
	if err2 != nil {
		slapadd = "/usr/sbin/slapadd"
	}
	for _, p := range []string{slapd, slapadd} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("slapd required in CI (apt-get install slapd ldap-utils): %v", err)
			}
			t.Skipf("slapd not installed: %v", err)
		}
	}
	dir := t.TempDir()
	s := &Server{Dir: dir, Suffix: Suffix, ReaderDN: "cn=reader," + Suffix}
	caCert, caKey := newCA(t, "Sekisho Test LDAP CA")
	s.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caCert.Raw)
	other, _ := newCA(t, "Some Other CA")
	s.OtherCA = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw)
	certDER, keyDER := newServerCert(t, caCert, caKey)
	certFile := writePEM(t, dir, "server.pem", "CERTIFICATE", certDER)
	keyFile := writePEM(t, dir, "server.key", "PRIVATE KEY", keyDER)
	s.PasswordFile = filepath.Join(dir, "bind.pw")
	if err := os.WriteFile(s.PasswordFile, []byte(ReaderPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	confText := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCertificateFile %[2]s
TLSCertificateKeyFile %[3]s
sizelimit 1000

database mdb
maxsize 16777216
Suffix "%[4]s"
rootdn "cn=admin,%[4]s"
directory %[5]s
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="cn=reader,%[4]s" read by * none
`, dir, certFile, keyFile, Suffix, data)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}
	ldif := filepath.Join(dir, "data.ldif")
	if err := os.WriteFile(ldif, []byte(LDIF), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(slapadd, "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	p1, p2 := FreePort(t), FreePort(t)
	s.LDAPURL = fmt.Sprintf("ldap://127.0.0.1:%d", p1)
	s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", p2)
	var logs bytes.Buffer
	cmd := exec.Command(slapd, "-f", conf, "-h", s.LDAPURL+"/ "+s.LDAPSURL+"/", "-d", "0")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting slapd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range []int{p1, p2} {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("slapd exited:\n%s", logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("slapd did not listen on %d: %v\n%s", port, err, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return s
}

func FreePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func newServerCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certDER, keyDER []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ldap.example.lg.jp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"ldap.example.lg.jp", "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	certDER, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certDER, keyDER
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Config is a configuration reading s through StartTLS as the reader:
// groups fukushi → 福祉, zaimu → 財務, kanri → 管理者 and 財務; users
// with employeeType 退職 are disabled.
func (s *Server) Config() *config.Config {
	return &config.Config{Directory: config.Directory{
		Roles: []string{"財務", "福祉", "管理者"},
		LDAP:  s.Settings(),
	}}
}

// Settings are the directory.ldap settings of Config.
func (s *Server) Settings() config.DirectoryLDAP {
	return config.DirectoryLDAP{
		URL: s.LDAPURL, StartTLS: true, CA: s.CAFile,
		BindDN: s.ReaderDN, BindPasswordFile: s.PasswordFile,
		BaseDN:         "ou=people," + s.Suffix,
		DisabledFilter: "(employeeType=退職)",
		Groups: map[string][]string{
			"cn=fukushi,ou=groups," + s.Suffix: {"福祉"},
			"cn=zaimu,ou=groups," + s.Suffix:   {"財務"},
			"CN=Kanri,OU=Groups," + s.Suffix:   {"role:管理者", "財務"},
		},
		Timeout: 5 * time.Second,
	}
}
