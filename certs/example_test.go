package certs_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sekisho/sekisho/certs"
)

func Example() {
	dir, _ := os.MkdirTemp("", "sekisho-ca")
	defer os.RemoveAll(dir)

	ca, err := certs.Init(filepath.Join(dir, "ca"), certs.WithName("○○市 端末認証局"))
	if err != nil {
		log.Fatal(err)
	}
	pc, err := ca.IssueDevice(certs.DeviceRequest{Device: "PC-0123", User: "tanaka.taro"})
	if err != nil {
		log.Fatal(err)
	}
	// pc.P12 and pc.Password go to the PC; the gateway trusts ca.pem.
	if err := pc.WriteFiles(filepath.Join(dir, "pc-0123")); err != nil {
		log.Fatal(err)
	}
	if _, err := ca.RevokeDevice("PC-0123", "cessationOfOperation"); err != nil {
		log.Fatal(err)
	}
	crl, err := ca.CRL(7 * 24 * time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ca.List()), "issued;", len(crl) > 0)
	// Output: 1 issued; true
}
