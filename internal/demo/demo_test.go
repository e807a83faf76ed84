package demo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
)

func TestPrepareCreatesAndReuses(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, HTTPPort: 18080, HTTPSPort: 18443, MetricsPort: 19090}
	s1, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca/ca.pem", "ca/ca-key.pem", "server.pem", "server-key.pem", "device/demo-pc.pem", "device/demo-pc-key.pem", "device/demo-pc.p12", "device-crl.pem", "sekisho.yaml", "policy.csv"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("demo did not create %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca/ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode: %v %v", fi.Mode(), err)
	}
	if s1.P12Password == "" || len(s1.AppPorts) != 2 {
		t.Errorf("setup = %+v", s1)
	}
	ca1, _ := os.ReadFile(filepath.Join(dir, "ca/ca.pem"))
	cfg1, _ := os.ReadFile(s1.ConfigPath)

	// The configuration and policy it wrote are valid for the real engine.
	cfg, err := config.Load(s1.ConfigPath, config.CheckFiles())
	if err != nil {
		t.Fatalf("demo config does not load: %v", err)
	}
	if _, err := policy.New(cfg); err != nil {
		t.Fatalf("demo policy does not load: %v", err)
	}

	// A second run reuses everything.
	s2, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, "ca/ca.pem"))
	cfg2, _ := os.ReadFile(s2.ConfigPath)
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(cfg1, cfg2) || s1.P12Password != s2.P12Password {
		t.Error("a second run did not reuse the CA, configuration or device certificate")
	}
	var b strings.Builder
	s2.Banner(&b, "http://zaimu.gw.localhost:18080/.sekisho/enroll?token=T")
	for _, want := range []string{"パスキーを登録", "http://zaimu.gw.localhost:18080/", "http://juki.gw.localhost:18080/", "https://zaimu.gw.localhost:18443/", s2.P12Password} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner lacks %q", want)
		}
	}
}
