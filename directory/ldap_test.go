package directory_test

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
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/store"
)

// slapdServer is a real OpenLDAP server started for one test.
type slapdServer struct {
	dir       string
	ldapURL   string // ldap://127.0.0.1:P (StartTLS offered)
	ldapsURL  string // ldaps://127.0.0.1:P
	caFile    string // the CA that issued the server certificate
	otherCA   string // a CA that did not
	suffix    string
	readerDN  string
	passwords string // file holding the reader's password
}

const ldapSuffix = "dc=example,dc=lg,dc=jp"

// testLDIF is the city's directory: four staff under ou=people, two role
// groups, one retired user (employeeType 退職), one entry of another kind.
const testLDIF = `dn: dc=example,dc=lg,dc=jp
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

dn: cn=kanri,ou=groups,dc=example,dc=lg,dc=jp
objectClass: groupOfNames
cn: kanri
member: uid=yamada,ou=people,dc=example,dc=lg,dc=jp
`

// startSlapd starts slapd on loopback ports with a generated slapd.conf,
// a server certificate from a generated CA, and testLDIF loaded. Without
// slapd the test is skipped, or fails when $CI is "true".
func startSlapd(t *testing.T) *slapdServer {
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
	s := &slapdServer{dir: dir, suffix: ldapSuffix, readerDN: "cn=reader," + ldapSuffix}
	caCert, caKey := newCA(t, "Sekisho Test LDAP CA")
	s.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caCert.Raw)
	other, _ := newCA(t, "Some Other CA")
	s.otherCA = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw)
	certDER, keyDER := newServerCert(t, caCert, caKey)
	certFile := writePEM(t, dir, "server.pem", "CERTIFICATE", certDER)
	keyFile := writePEM(t, dir, "server.key", "PRIVATE KEY", keyDER)
	s.passwords = filepath.Join(dir, "bind.pw")
	if err := os.WriteFile(s.passwords, []byte("yomitori-2027\n"), 0o600); err != nil {
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
suffix "%[4]s"
rootdn "cn=admin,%[4]s"
directory %[5]s
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="cn=reader,%[4]s" read by * none
`, dir, certFile, keyFile, ldapSuffix, data)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}
	ldif := filepath.Join(dir, "data.ldif")
	if err := os.WriteFile(ldif, []byte(testLDIF), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(slapadd, "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	p1, p2 := freePort(t), freePort(t)
	s.ldapURL = fmt.Sprintf("ldap://127.0.0.1:%d", p1)
	s.ldapsURL = fmt.Sprintf("ldaps://127.0.0.1:%d", p2)
	var logs bytes.Buffer
	cmd := exec.Command(slapd, "-f", conf, "-h", s.ldapURL+"/ "+s.ldapsURL+"/", "-d", "0")
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

func freePort(t *testing.T) int {
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

// ldapConfig is a configuration reading s through StartTLS as the reader.
func (s *slapdServer) config() *config.Config {
	return &config.Config{Directory: config.Directory{
		Roles: []string{"財務", "福祉", "管理者"},
		LDAP: config.DirectoryLDAP{
			URL: s.ldapURL, StartTLS: true, CA: s.caFile,
			BindDN: s.readerDN, BindPasswordFile: s.passwords,
			BaseDN:         "ou=people," + s.suffix,
			DisabledFilter: "(employeeType=退職)",
			Groups: map[string][]string{
				"cn=fukushi,ou=groups," + s.suffix: {"福祉"},
				"cn=zaimu,ou=groups," + s.suffix:   {"財務"},
				"CN=Kanri,OU=Groups," + s.suffix:   {"role:管理者", "財務"},
			},
			Timeout: 5 * time.Second,
		},
	}}
}

func TestLDAPSyncStartTLS(t *testing.T) {
	s := startSlapd(t)
	ctx := t.Context()
	cfg := s.config()
	roles := directory.NewRoles(cfg.Directory.Roles...)
	src, err := directory.ReadLDAP(ctx, cfg, roles)
	if err != nil {
		t.Fatalf("ReadLDAP: %v", err)
	}
	var got strings.Builder
	for _, e := range src.Entries {
		fmt.Fprintf(&got, "%s|%s|%s|%s|%v|%s\n", e.ID, e.DisplayName, e.Department, strings.Join(e.Roles, ";"), e.Disabled, e.Where)
	}
	want := "sato|佐藤 花子|福祉課|福祉|false|uid=sato,ou=people,dc=example,dc=lg,dc=jp\n" +
		"suzuki|鈴木 一郎|財務課|財務|false|uid=suzuki,ou=people,dc=example,dc=lg,dc=jp\n" +
		"yamada|山田 太郎|財務課|管理者;財務|false|uid=yamada,ou=people,dc=example,dc=lg,dc=jp\n" +
		"tanaka|田中 三郎|税務課||true|uid=tanaka,ou=people,dc=example,dc=lg,dc=jp\n"
	if lines(got.String()) != lines(want) {
		t.Errorf("entries:\n%s\nwant (any order):\n%s", got.String(), want)
	}
	if !src.Full {
		t.Error("an LDAP source must be full")
	}

	// Sync: sato moved to 福祉課, ito left the directory, tanaka retired.
	st := openStore(t)
	seed(t, st,
		&store.User{ID: "sato", DisplayName: "佐藤 花子", Department: "財務課", Roles: []string{"財務"}},
		&store.User{ID: "suzuki", DisplayName: "鈴木 一郎", Department: "財務課", Roles: []string{"財務"}},
		&store.User{ID: "tanaka", DisplayName: "田中 三郎", Department: "税務課"},
		&store.User{ID: "ito", DisplayName: "伊藤 次郎", Department: "税務課", Roles: []string{"財務"}},
	)
	clock := func() time.Time { return march }
	cs, err := directory.Plan(ctx, st, src, directory.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "ldap_plan.golden", strings.ReplaceAll(render(t, cs), s.ldapURL, "ldap://127.0.0.1:PORT"))
	rec := &records{}
	res, err := directory.Apply(ctx, st, cs, directory.WithClock(clock), directory.WithAudit(rec))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Changed != 1 || res.Disabled != 2 || len(res.Revoked) != 2 || len(rec.list) != 4 {
		t.Errorf("applied %+v with %d audit records", res, len(rec.list))
	}
	// A second sync finds nothing to do.
	src, err = directory.ReadLDAP(ctx, cfg, roles)
	if err != nil {
		t.Fatal(err)
	}
	cs, err = directory.Plan(ctx, st, src, directory.WithClock(clock))
	if err != nil || !cs.Empty() {
		t.Errorf("second sync: %v\n%s", err, render(t, cs))
	}
}

func lines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j] < l[i] {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
	return strings.Join(l, "\n")
}

func TestLDAPConnections(t *testing.T) {
	s := startSlapd(t)
	ctx := t.Context()
	roles := directory.NewRoles("財務", "福祉", "管理者")
	read := func(mod func(*config.DirectoryLDAP)) error {
		cfg := s.config()
		mod(&cfg.Directory.LDAP)
		_, err := directory.ReadLDAP(ctx, cfg, roles)
		return err
	}
	ok := []struct {
		name string
		mod  func(*config.DirectoryLDAP)
	}{
		{"ldaps", func(l *config.DirectoryLDAP) { l.URL, l.StartTLS = s.ldapsURL, false }},
		{"plain ldap on loopback", func(l *config.DirectoryLDAP) { l.StartTLS = false }},
		{"password from the environment", func(l *config.DirectoryLDAP) {
			t.Setenv("SEKISHO_TEST_LDAP_PW", "yomitori-2027")
			l.BindPasswordFile, l.BindPasswordEnv = "", "SEKISHO_TEST_LDAP_PW"
		}},
		{"relative files beside the config", func(l *config.DirectoryLDAP) { l.CA, l.BindPasswordFile = "ca.pem", "bind.pw" }},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.config()
			cfg.Path = filepath.Join(s.dir, "sekisho.yaml")
			tt.mod(&cfg.Directory.LDAP)
			src, err := directory.ReadLDAP(ctx, cfg, roles)
			if err != nil || len(src.Entries) != 4 {
				t.Errorf("ReadLDAP: %v", err)
			}
		})
	}
	bad := []struct {
		name string
		mod  func(*config.DirectoryLDAP)
		want string
	}{
		{"certificate from another CA", func(l *config.DirectoryLDAP) { l.CA = s.otherCA }, "certificate signed by unknown authority"},
		{"ldaps with another CA", func(l *config.DirectoryLDAP) { l.URL, l.StartTLS, l.CA = s.ldapsURL, false, s.otherCA }, "certificate signed by unknown authority"},
		{"wrong server name", func(l *config.DirectoryLDAP) { l.ServerName = "ad.example.lg.jp" }, "certificate is valid for"},
		{"wrong password", func(l *config.DirectoryLDAP) {
			t.Setenv("SEKISHO_TEST_LDAP_PW", "wrong")
			l.BindPasswordFile, l.BindPasswordEnv = "", "SEKISHO_TEST_LDAP_PW"
		}, "Invalid Credentials"},
		{"unset password variable", func(l *config.DirectoryLDAP) { l.BindPasswordFile, l.BindPasswordEnv = "", "SEKISHO_TEST_LDAP_UNSET" }, "SEKISHO_TEST_LDAP_UNSET"},
		{"anonymous sees nothing", func(l *config.DirectoryLDAP) { l.BindDN = ""; l.Groups = nil }, "No Such Object"},
		{"filter matching nobody", func(l *config.DirectoryLDAP) { l.UserFilter = "(uid=nobody)" }, "refusing to sync an empty directory"},
		{"missing group", func(l *config.DirectoryLDAP) { l.Groups["cn=nai,ou=groups,"+s.suffix] = []string{"財務"} }, "no such group"},
		{"unknown role", func(l *config.DirectoryLDAP) { l.Groups["cn=zaimu,ou=groups,"+s.suffix] = []string{"経理"} }, `unknown role "経理"`},
		{"plain ldap to another host", func(l *config.DirectoryLDAP) { l.URL, l.StartTLS = "ldap://ldap.example.lg.jp", false }, "plain ldap:// would send the password unencrypted"},
		{"nothing listens", func(l *config.DirectoryLDAP) { l.URL = fmt.Sprintf("ldaps://127.0.0.1:%d", freePort(t)) }, "connection refused"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := read(tt.mod)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadLDAP error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
