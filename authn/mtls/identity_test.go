package mtls

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/url"
	"testing"

	"github.com/sekisho/sekisho/config"
)

// adcsLeaf is a certificate shaped like one from an AD CS "Computer" or
// "User" template: no sekisho URI, identity in DNS/UPN/email/CN.
func adcsLeaf(t testing.TB, ca *testCA, mod func(*x509.Certificate)) *x509.Certificate {
	c, _ := ca.issue(t, "unused", func(c *x509.Certificate) {
		c.URIs = nil
		c.Subject = pkix.Name{}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
		mod(c)
	})
	return c
}

func TestDeviceIDMappings(t *testing.T) {
	adcs := newTestCA(t, "City Issuing CA", nil)
	dns := adcsLeaf(t, adcs, func(c *x509.Certificate) { c.DNSNames = []string{"PC-0123.city.local."} })
	upn := adcsLeaf(t, adcs, func(c *x509.Certificate) {
		c.ExtraExtensions = []pkix.Extension{sanExtension(t, dnsName("pc-0456.city.local"), upnName(t, "pc0456$@city.local"))}
	})
	email := adcsLeaf(t, adcs, func(c *x509.Certificate) { c.EmailAddresses = []string{"PC-0789@City.LG.JP"} })
	cn := adcsLeaf(t, adcs, func(c *x509.Certificate) { c.Subject.CommonName = "PC-1011" })
	cnCtl := adcsLeaf(t, adcs, func(c *x509.Certificate) { c.Subject.CommonName = "PC-1\r\nX-Sekisho-User: admin" })
	customURI := adcsLeaf(t, adcs, func(c *x509.Certificate) {
		c.URIs = []*url.URL{{Scheme: "https", Host: "devices.city.lg.jp", Path: "/id/PC-1213"}}
	})
	sekisho, _ := adcs.issue(t, "PC-SEKISHO", func(c *x509.Certificate) {
		c.Subject.CommonName = "something else"
		c.URIs = append(c.URIs, &url.URL{Scheme: "urn", Opaque: "sekisho:user:tanaka"})
	})

	for _, tc := range []struct {
		idFrom, prefix string
		leaf           *x509.Certificate
		wantID         string
		wantUser       string
		wantErr        error
	}{
		{"san_dns", "", dns, "pc-0123.city.local", "", nil},
		{"san_dns", "", upn, "pc-0456.city.local", "", nil},
		{"san_dns", "", cn, "", "", ErrNoDeviceID},
		{"san_upn", "", upn, "pc0456$@city.local", "", nil},
		{"san_upn", "", dns, "", "", ErrNoDeviceID},
		{"san_email", "", email, "pc-0789@city.lg.jp", "", nil},
		{"san_email", "", dns, "", "", ErrNoDeviceID},
		{"cn", "", cn, "PC-1011", "", nil},
		{"cn", "", dns, "", "", ErrNoDeviceID},
		{"cn", "", cnCtl, "", "", ErrNoDeviceID},
		{"san_uri", "https://devices.city.lg.jp/id/", customURI, "PC-1213", "", nil},
		{"san_uri", "", customURI, "", "", ErrNoDeviceID},
		// sekisho's own profile is read the same way whatever id_from says.
		{"cn", "", sekisho, "PC-SEKISHO", "tanaka", nil},
		{"san_dns", "", sekisho, "PC-SEKISHO", "tanaka", nil},
	} {
		t.Run(tc.idFrom+"/"+tc.wantID, func(t *testing.T) {
			cfg := testConfig(t, nil, adcs)
			cfg.Devices = config.Devices{IDFrom: tc.idFrom, URIPrefix: tc.prefix}
			v, _ := newVerifier(t, cfg)
			dev, err := v.Verify([]*x509.Certificate{tc.leaf})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Verify = %+v, %v; want %v", dev, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if dev.ID != tc.wantID || dev.User != tc.wantUser {
				t.Errorf("ID, User = %q, %q; want %q, %q", dev.ID, dev.User, tc.wantID, tc.wantUser)
			}
		})
	}
}

func TestParseUPNs(t *testing.T) {
	der, _ := asn1.Marshal([]asn1.RawValue{
		dnsName("a.example"),
		upnName(t, "taro@city.local"),
		// An otherName of another type is skipped.
		otherNameOf(t, asn1.ObjectIdentifier{1, 2, 3}, "x"),
		upnName(t, "second@city.local"),
	})
	got, err := parseUPNs(der)
	if err != nil || len(got) != 2 || got[0] != "taro@city.local" || got[1] != "second@city.local" {
		t.Fatalf("parseUPNs = %q, %v", got, err)
	}
	// UPN value that is not a string.
	notString, _ := asn1.Marshal(42)
	bad := otherName{TypeID: oidUPN, Value: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: notString}}
	badDER, _ := asn1.MarshalWithParams(bad, "tag:0")
	for name, in := range map[string][]byte{
		"empty":         nil,
		"not sequence":  {0x02, 0x01, 0x01},
		"trailing data": append(append([]byte{}, der...), 0x00),
		"truncated":     der[:len(der)-3],
		"UPN not string": func() []byte {
			b, _ := asn1.Marshal([]asn1.RawValue{{FullBytes: badDER}})
			return b
		}(),
	} {
		if got, err := parseUPNs(in); err == nil {
			t.Errorf("%s: parseUPNs = %q, nil; want an error", name, got)
		}
	}
}

func otherNameOf(t testing.TB, oid asn1.ObjectIdentifier, s string) asn1.RawValue {
	inner, _ := asn1.MarshalWithParams(s, "utf8")
	der, err := asn1.MarshalWithParams(otherName{TypeID: oid, Value: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}}, "tag:0")
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: der}
}

func TestUsableID(t *testing.T) {
	for s, want := range map[string]bool{
		"PC-0123": true, "端末０１": true, "a b": true, "pc$@city.local": true,
		"": false, " PC": false, "PC ": false, "a\nb": false, "a\x00b": false, "a\u200bb": false,
		"\xff": false, string(make([]byte, 300)): false,
	} {
		if got := usableID(s); got != want {
			t.Errorf("usableID(%q) = %v, want %v", s, got, want)
		}
	}
}
