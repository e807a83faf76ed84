package mtls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTLSHandshake runs the gateway's arrangement for real: a TLS listener
// that requests (not requires) a client certificate and a handler that calls
// Verify with the connection's peer certificates.
func TestTLSHandshake(t *testing.T) {
	root := newTestCA(t, "Test City Device CA", nil)
	other := newTestCA(t, "Stranger CA", nil)
	good, goodKey := root.issue(t, "PC-TLS")
	revoked, revokedKey := root.issue(t, "PC-REVOKED")
	stranger, strangerKey := other.issue(t, "PC-STRANGER")
	v, _ := newVerifier(t, testConfig(t, pemOf("X509 CRL", root.crl(t, 1, revoked.SerialNumber)), root))

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dev, err := v.Verify(r.TLS.PeerCertificates)
		if err != nil {
			http.Error(w, Code(err), http.StatusForbidden)
			return
		}
		io.WriteString(w, dev.ID)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, ClientCAs: v.ClientCAs()}
	srv.StartTLS()
	defer srv.Close()

	var acceptable [][]byte
	get := func(t *testing.T, present func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) (int, string) {
		t.Helper()
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.GetClientCertificate = present
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatalf("request failed (the handshake must not fail): %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(bytes.TrimSpace(body))
	}
	// present sends cert whatever the server asks for (an attacker's client
	// does not filter by acceptable CAs).
	present := func(cert *x509.Certificate, key any) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			acceptable = cri.AcceptableCAs
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
		}
	}

	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		key    any
		status int
		body   string
	}{
		{"valid device", good, goodKey, 200, "PC-TLS"},
		{"no certificate", nil, nil, 403, "no_certificate"},
		{"revoked", revoked, revokedKey, 403, "revoked"},
		{"other CA", stranger, strangerKey, 403, "untrusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, present(tc.cert, tc.key))
			if status != tc.status || body != tc.body {
				t.Errorf("got %d %q, want %d %q", status, body, tc.status, tc.body)
			}
		})
	}
	if len(acceptable) != 1 || !bytes.Equal(acceptable[0], root.cert.RawSubject) {
		t.Errorf("server advertised acceptable CAs %q, want the device CA", acceptable)
	}

	// A standard client holding the right certificate picks it by itself.
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{good.Raw}, PrivateKey: goodKey}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "PC-TLS" {
		t.Errorf("client with Certificates: %d %q", resp.StatusCode, body)
	}
}
