package mtls

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The SAN URI prefixes of sekisho's own device CA (package certs). They are
// part of the frozen certificate profile: certs/profile.go.
const (
	sekishoDeviceURIPrefix = "urn:sekisho:device:"
	sekishoUserURIPrefix   = "urn:sekisho:user:"
)

// Ways of reading a device id, as config.Devices.IDFrom names them.
const (
	IDFromSANURI   = "san_uri"
	IDFromSANDNS   = "san_dns"
	IDFromSANUPN   = "san_upn"
	IDFromSANEmail = "san_email"
	IDFromCN       = "cn"
)

// maxIDLen bounds an id read from a certificate; ids end up in headers,
// audit records and policy lookups.
const maxIDLen = 256

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	// oidUPN is Microsoft's user principal name otherName (AD CS certificates).
	oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

// identity reads the device id (and the bound user, if any) from a
// certificate. A certificate of sekisho's own profile is always read by its
// SAN URI; any other is read the way idFrom says.
func identity(cert *x509.Certificate, idFrom, uriPrefix string) (id, user string, err error) {
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, sekishoUserURIPrefix) && user == "" {
			user = strings.TrimPrefix(s, sekishoUserURIPrefix)
		}
	}
	if user != "" && !usableID(user) {
		return "", "", fmt.Errorf("%w: unusable user id in SAN URI", ErrNoDeviceID)
	}
	if id = fromURI(cert, sekishoDeviceURIPrefix); id != "" {
		return checkID(id, user, "SAN URI "+sekishoDeviceURIPrefix)
	}
	switch idFrom {
	case IDFromSANURI, "":
		if uriPrefix == "" {
			uriPrefix = sekishoDeviceURIPrefix
		}
		return checkID(fromURI(cert, uriPrefix), user, "SAN URI "+uriPrefix)
	case IDFromSANDNS:
		if len(cert.DNSNames) > 0 {
			id = strings.TrimSuffix(strings.ToLower(cert.DNSNames[0]), ".")
		}
		return checkID(id, user, "SAN DNS name")
	case IDFromSANUPN:
		upns, err := upnsFromCert(cert)
		if err != nil {
			return "", "", fmt.Errorf("%w: %w", ErrNoDeviceID, err)
		}
		if len(upns) > 0 {
			id = upns[0]
		}
		return checkID(id, user, "SAN UPN")
	case IDFromSANEmail:
		if len(cert.EmailAddresses) > 0 {
			id = strings.ToLower(cert.EmailAddresses[0])
		}
		return checkID(id, user, "SAN email")
	case IDFromCN:
		return checkID(strings.TrimSpace(cert.Subject.CommonName), user, "subject CN")
	default:
		return "", "", fmt.Errorf("%w: unknown devices.id_from %q", ErrNoDeviceID, idFrom)
	}
}

func fromURI(cert *x509.Certificate, prefix string) string {
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, prefix) {
			return strings.TrimPrefix(s, prefix)
		}
	}
	return ""
}

func checkID(id, user, where string) (string, string, error) {
	if id == "" {
		return "", "", fmt.Errorf("%w: no %s", ErrNoDeviceID, where)
	}
	if !usableID(id) {
		return "", "", fmt.Errorf("%w: unusable id in %s", ErrNoDeviceID, where)
	}
	return id, user, nil
}

// usableID refuses what could break a header, a log line or a policy
// lookup: invalid UTF-8, control and format characters, surrounding space,
// excessive length.
func usableID(s string) bool {
	if s == "" || len(s) > maxIDLen || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// otherName is the GeneralName alternative [0] of RFC 5280 §4.2.1.6.
type otherName struct {
	TypeID asn1.ObjectIdentifier
	Value  asn1.RawValue // [0] EXPLICIT ANY DEFINED BY TypeID
}

// upnsFromCert returns the UPN otherNames of the certificate's SAN extension.
func upnsFromCert(cert *x509.Certificate) ([]string, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			return parseUPNs(ext.Value)
		}
	}
	return nil, nil
}

// parseUPNs reads the UPN otherNames from a DER SubjectAltName extension
// value (GeneralNames). Other GeneralName kinds are skipped.
func parseUPNs(der []byte) ([]string, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return nil, fmt.Errorf("parsing subjectAltName: %w", err)
	}
	if len(rest) > 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, errors.New("parsing subjectAltName: not a single SEQUENCE")
	}
	var upns []string
	for data := seq.Bytes; len(data) > 0; {
		var gn asn1.RawValue
		if data, err = asn1.Unmarshal(data, &gn); err != nil {
			return nil, fmt.Errorf("parsing subjectAltName entry: %w", err)
		}
		if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 || !gn.IsCompound {
			continue
		}
		var on otherName
		if rest, err := asn1.UnmarshalWithParams(gn.FullBytes, &on, "tag:0"); err != nil || len(rest) > 0 {
			return nil, fmt.Errorf("parsing otherName: malformed")
		}
		if !on.TypeID.Equal(oidUPN) {
			continue
		}
		if on.Value.Class != asn1.ClassContextSpecific || on.Value.Tag != 0 || !on.Value.IsCompound {
			return nil, errors.New("parsing UPN: value is not [0] EXPLICIT")
		}
		var upn string
		if rest, err := asn1.UnmarshalWithParams(on.Value.Bytes, &upn, "utf8"); err != nil || len(rest) > 0 {
			return nil, errors.New("parsing UPN: not a UTF8String")
		}
		upns = append(upns, upn)
	}
	return upns, nil
}
