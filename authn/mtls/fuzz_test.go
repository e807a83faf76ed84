package mtls

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/url"
	"testing"
)

// fuzzSeeds are certificates exercising every mapping; the same set is
// stored under testdata/fuzz/FuzzDeviceID (see TestWriteFuzzSeeds).
func fuzzSeeds(t testing.TB) [][]byte {
	ca := newTestCA(t, "Fuzz CA", nil)
	var out [][]byte
	add := func(mod func(*x509.Certificate)) {
		c, _ := ca.issue(t, "PC-FUZZ", mod)
		out = append(out, c.Raw)
	}
	add(func(c *x509.Certificate) {
		c.URIs = append(c.URIs, &url.URL{Scheme: "urn", Opaque: "sekisho:user:u1"})
	})
	add(func(c *x509.Certificate) {
		c.URIs = nil
		c.ExtraExtensions = []pkix.Extension{sanExtension(t, dnsName("pc.city.local"), upnName(t, "pc$@city.local"),
			otherNameOf(t, asn1.ObjectIdentifier{1, 2, 3, 4}, "other"))}
	})
	add(func(c *x509.Certificate) { c.URIs = nil; c.EmailAddresses = []string{"pc@city.lg.jp"} })
	add(func(c *x509.Certificate) { c.URIs = nil; c.Subject.CommonName = "PC\r\n-1" })
	add(func(c *x509.Certificate) {
		c.URIs = []*url.URL{{Scheme: "https", Host: "devices.example", Path: "/id/PC-2"}}
	})
	return out
}

// FuzzDeviceID feeds DER certificates to the certificate-to-identity
// mapping under every devices.id_from: no panic, and an id it returns is
// always usable (no control characters, bounded).
func FuzzDeviceID(f *testing.F) {
	for _, der := range fuzzSeeds(f) {
		f.Add(der)
	}
	modes := []string{IDFromSANURI, IDFromSANDNS, IDFromSANUPN, IDFromSANEmail, IDFromCN}
	f.Fuzz(func(t *testing.T, der []byte) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		for _, mode := range modes {
			id, user, err := identity(cert, mode, "https://devices.example/id/")
			if err != nil {
				if !errors.Is(err, ErrNoDeviceID) {
					t.Fatalf("%s: error %v is not ErrNoDeviceID", mode, err)
				}
				continue
			}
			if !usableID(id) || (user != "" && !usableID(user)) {
				t.Fatalf("%s: unusable id %q / user %q accepted", mode, id, user)
			}
		}
	})
}

// FuzzParseUPNs feeds raw subjectAltName values to the UPN parser.
func FuzzParseUPNs(f *testing.F) {
	for _, der := range upnSeeds(f) {
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x05, 0xa0, 0x03, 0x06, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		upns, err := parseUPNs(data)
		if err != nil && len(upns) > 0 {
			t.Fatalf("parseUPNs returned values with an error")
		}
	})
}

// upnSeeds are subjectAltName values: well-formed with several kinds of
// names, an otherName of another type, and a UPN that is not a string.
func upnSeeds(t testing.TB) [][]byte {
	notString, _ := asn1.Marshal(42)
	bad, _ := asn1.MarshalWithParams(otherName{TypeID: oidUPN, Value: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: notString}}, "tag:0")
	var out [][]byte
	for _, names := range [][]asn1.RawValue{
		{dnsName("a.example"), upnName(t, "taro@city.local")},
		{otherNameOf(t, asn1.ObjectIdentifier{1, 2, 3}, "x"), upnName(t, "端末@city.local")},
		{{FullBytes: bad}},
	} {
		der, err := asn1.Marshal(names)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, der)
	}
	return out
}
