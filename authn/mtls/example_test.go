package mtls_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sekisho/sekisho/authn/mtls"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
)

func Example() {
	dir, _ := os.MkdirTemp("", "sekisho-mtls")
	defer os.RemoveAll(dir)

	// The city's device CA and one PC's certificate.
	ca, err := certs.Init(filepath.Join(dir, "ca"))
	if err != nil {
		log.Fatal(err)
	}
	pc, err := ca.IssueDevice(certs.DeviceRequest{Device: "PC-0123", User: "tanaka.taro"})
	if err != nil {
		log.Fatal(err)
	}

	// The gateway trusts the CA; in the proxy, tls.Config gets
	// ClientAuth: tls.RequestClientCert and ClientCAs: v.ClientCAs().
	cfg := &config.Config{}
	cfg.Server.ClientCA = []string{filepath.Join(dir, "ca", certs.CertFile)}
	v, err := mtls.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	// Per request: Verify(r.TLS.PeerCertificates).
	block, _ := pem.Decode(pc.CertPEM)
	leaf, _ := x509.ParseCertificate(block.Bytes)
	dev, err := v.Verify([]*x509.Certificate{leaf})
	if err != nil {
		ja, en := mtls.Reason(err)
		fmt.Println(ja, "/", en)
		return
	}
	fmt.Println(dev.ID, dev.User, dev.Fingerprint == pc.Fingerprint)

	_, err = v.Verify(nil)
	ja, en := mtls.Reason(err)
	fmt.Println(mtls.Code(err), ja != "" && en != "")
	// Output:
	// PC-0123 tanaka.taro true
	// no_certificate true
}
