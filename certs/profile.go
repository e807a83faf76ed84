package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The certificate profile in this file is a wire format. The gateway maps a
// certificate to a device by the SAN URI prefix below, and certificates in
// the field outlive any release: the prefixes, the extended key usages and
// the key usages are frozen. Change them only with a migration path for
// certificates already issued.
const (
	// DeviceURIPrefix precedes the device id in a device certificate's SAN URI.
	DeviceURIPrefix = "urn:sekisho:device:"
	// UserURIPrefix precedes the user id in the optional second SAN URI.
	UserURIPrefix = "urn:sekisho:user:"
)

// Defaults for validity periods.
const (
	DefaultCAYears    = 10
	DefaultDeviceDays = 365
	// DefaultServerDays is the longest validity browsers accept for a server
	// certificate.
	DefaultServerDays = 397
	// backdate absorbs small clock differences between the CA and the PCs.
	backdate = 5 * time.Minute
)

// idPattern is what a device or user id may contain: it ends up in a URN,
// in file names of the operator's choosing and in audit records.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)

// ValidID reports whether s may be used as a device or user id.
func ValidID(s string) bool { return idPattern.MatchString(s) }

func caTemplate(name string, serial *big.Int, now time.Time, years int) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sekisho"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(years, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
}

func deviceTemplate(device, user string, serial *big.Int, now time.Time, days int) *x509.Certificate {
	uris := []*url.URL{{Scheme: "urn", Opaque: strings.TrimPrefix(DeviceURIPrefix, "urn:") + device}}
	if user != "" {
		uris = append(uris, &url.URL{Scheme: "urn", Opaque: strings.TrimPrefix(UserURIPrefix, "urn:") + user})
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: device, OrganizationalUnit: []string{"sekisho device"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  uris,
	}
}

func serverTemplate(hosts []string, serial *big.Int, now time.Time, days int) (*x509.Certificate, error) {
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
			continue
		}
		if h == "" || strings.ContainsAny(h, " /:@") {
			return nil, fmt.Errorf("invalid host name %q", h)
		}
		t.DNSNames = append(t.DNSNames, strings.ToLower(h))
	}
	return t, nil
}
