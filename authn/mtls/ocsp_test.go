package mtls

import (
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspResponder is a real OCSP responder over HTTP, signing with the CA key.
type ocspResponder struct {
	ca     *testCA
	signer *testCA // signs responses; the CA itself unless set
	mu     sync.Mutex
	status map[string]int
	down   bool
	delay  time.Duration
	hits   atomic.Int32
	// now dates the answers; t0 when nil.
	now func() time.Time
}

func (r *ocspResponder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	r.mu.Lock()
	down, delay := r.down, r.delay
	r.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if down {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(req.Body)
	oreq, err := ocsp.ParseRequest(body)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	r.mu.Lock()
	st, ok := r.status[oreq.SerialNumber.Text(16)]
	r.mu.Unlock()
	if !ok {
		st = ocsp.Unknown
	}
	now := t0
	if r.now != nil {
		now = r.now()
	}
	signer := r.ca
	if r.signer != nil {
		signer = r.signer
	}
	resp, err := ocsp.CreateResponse(r.ca.cert, signer.cert, ocsp.Response{
		Status:       st,
		SerialNumber: oreq.SerialNumber,
		ThisUpdate:   now.Add(-time.Minute),
		NextUpdate:   now.Add(time.Hour),
		RevokedAt:    t0.Add(-time.Hour),
	}, signer.key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

func (r *ocspResponder) set(serial *big.Int, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[serial.Text(16)] = status
}

func TestOCSP(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	resp := &ocspResponder{ca: root, status: map[string]int{}}
	srv := httptest.NewServer(resp)
	defer srv.Close()
	withOCSP := func(c *x509.Certificate) { c.OCSPServer = []string{srv.URL} }

	good, _ := root.issue(t, "PC-GOOD", withOCSP)
	revoked, _ := root.issue(t, "PC-REVOKED", withOCSP)
	unknown, _ := root.issue(t, "PC-UNKNOWN", withOCSP)
	resp.set(good.SerialNumber, ocsp.Good)
	resp.set(revoked.SerialNumber, ocsp.Revoked)

	for _, failOpen := range []bool{false, true} {
		cfg := testConfig(t, nil, root)
		cfg.Server.OCSP.Enabled = true
		cfg.Server.OCSP.FailOpen = failOpen
		// The verification cache is off so that each Verify reaches the
		// OCSP layer and its own cache is what is tested.
		v, clock := newVerifier(t, cfg, WithCache(0, 0))
		resp.hits.Store(0)

		if _, err := v.Verify([]*x509.Certificate{good}); err != nil {
			t.Errorf("failOpen=%v good: %v", failOpen, err)
		}
		if _, err := v.Verify([]*x509.Certificate{good}); err != nil {
			t.Errorf("failOpen=%v good again: %v", failOpen, err)
		}
		if n := resp.hits.Load(); n != 1 {
			t.Errorf("failOpen=%v: responder asked %d times for one certificate within nextUpdate, want 1", failOpen, n)
		}
		if _, err := v.Verify([]*x509.Certificate{revoked}); !errors.Is(err, ErrRevoked) {
			t.Errorf("failOpen=%v revoked: err = %v, want ErrRevoked", failOpen, err)
		}
		if _, err := v.Verify([]*x509.Certificate{unknown}); !errors.Is(err, ErrOCSPUnavailable) {
			t.Errorf("failOpen=%v unknown: err = %v, want ErrOCSPUnavailable (never failed open)", failOpen, err)
		}
		// Past nextUpdate the responder is asked again.
		clock.Advance(61 * time.Minute)
		resp.mu.Lock()
		resp.now = clock.Now
		resp.mu.Unlock()
		before := resp.hits.Load()
		if _, err := v.Verify([]*x509.Certificate{good}); err != nil {
			t.Errorf("failOpen=%v good after nextUpdate: %v", failOpen, err)
		}
		if resp.hits.Load() != before+1 {
			t.Errorf("failOpen=%v: responder not asked again after nextUpdate", failOpen)
		}
		resp.mu.Lock()
		resp.now = nil
		resp.mu.Unlock()
	}
}

func TestOCSPStaleAnswer(t *testing.T) {
	// A responder whose answers are already past nextUpdate gives no usable
	// status: unavailable when failing closed.
	root := newTestCA(t, "CA", nil)
	resp := &ocspResponder{ca: root, status: map[string]int{}, now: func() time.Time { return t0.Add(-2 * time.Hour) }}
	srv := httptest.NewServer(resp)
	defer srv.Close()
	leaf, _ := root.issue(t, "PC-1", func(c *x509.Certificate) { c.OCSPServer = []string{srv.URL} })
	resp.set(leaf.SerialNumber, ocsp.Good)
	cfg := testConfig(t, nil, root)
	cfg.Server.OCSP.Enabled = true
	v, _ := newVerifier(t, cfg)
	if _, err := v.Verify([]*x509.Certificate{leaf}); !errors.Is(err, ErrOCSPUnavailable) {
		t.Errorf("stale answer: err = %v, want ErrOCSPUnavailable", err)
	}
}

func TestOCSPUnreachable(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	resp := &ocspResponder{ca: root, status: map[string]int{}, down: true}
	srv := httptest.NewServer(resp)
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	down, _ := root.issue(t, "PC-1", func(c *x509.Certificate) { c.OCSPServer = []string{srv.URL} })
	gone, _ := root.issue(t, "PC-2", func(c *x509.Certificate) { c.OCSPServer = []string{closedURL} })
	slowResp := &ocspResponder{ca: root, status: map[string]int{}, delay: 300 * time.Millisecond}
	slowSrv := httptest.NewServer(slowResp)
	defer slowSrv.Close()
	slow, _ := root.issue(t, "PC-3", func(c *x509.Certificate) { c.OCSPServer = []string{slowSrv.URL} })
	slowResp.set(slow.SerialNumber, ocsp.Good)

	for _, failOpen := range []bool{false, true} {
		cfg := testConfig(t, nil, root)
		cfg.Server.OCSP.Enabled = true
		cfg.Server.OCSP.FailOpen = failOpen
		cfg.Server.OCSP.Timeout = 50 * time.Millisecond
		v, clock := newVerifier(t, cfg, WithCache(0, 0))
		resp.hits.Store(0)
		for _, leaf := range []*x509.Certificate{down, gone, slow} {
			dev, err := v.Verify([]*x509.Certificate{leaf})
			if failOpen {
				if err != nil || dev.ID != leaf.Subject.CommonName {
					t.Errorf("fail-open %s: %v, %v; want accepted", leaf.Subject.CommonName, dev, err)
				}
			} else if !errors.Is(err, ErrOCSPUnavailable) {
				t.Errorf("fail-closed %s: err = %v, want ErrOCSPUnavailable", leaf.Subject.CommonName, err)
			}
		}
		// A failed responder is not asked again during the back-off…
		v.Verify([]*x509.Certificate{down})
		if n := resp.hits.Load(); n != 1 {
			t.Errorf("failOpen=%v: failed responder asked %d times during back-off, want 1", failOpen, n)
		}
		// …and is asked again after it.
		clock.Advance(ocspBackoff + time.Second)
		v.Verify([]*x509.Certificate{down})
		if n := resp.hits.Load(); n != 2 {
			t.Errorf("failOpen=%v: responder asked %d times after back-off, want 2", failOpen, n)
		}
	}
}

func TestOCSPForgedResponse(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	attacker := newTestCA(t, "CA", nil)
	resp := &ocspResponder{ca: root, signer: attacker, status: map[string]int{}}
	srv := httptest.NewServer(resp)
	defer srv.Close()
	leaf, _ := root.issue(t, "PC-1", func(c *x509.Certificate) { c.OCSPServer = []string{srv.URL} })
	resp.set(leaf.SerialNumber, ocsp.Good)
	cfg := testConfig(t, nil, root)
	cfg.Server.OCSP.Enabled = true
	v, _ := newVerifier(t, cfg)
	if _, err := v.Verify([]*x509.Certificate{leaf}); !errors.Is(err, ErrOCSPUnavailable) {
		t.Errorf("response signed by another key: err = %v, want ErrOCSPUnavailable", err)
	}
}

func TestOCSPDisabled(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	resp := &ocspResponder{ca: root, status: map[string]int{}}
	srv := httptest.NewServer(resp)
	defer srv.Close()
	leaf, _ := root.issue(t, "PC-1", func(c *x509.Certificate) { c.OCSPServer = []string{srv.URL} })
	resp.set(leaf.SerialNumber, ocsp.Revoked)
	v, _ := newVerifier(t, testConfig(t, nil, root))
	if _, err := v.Verify([]*x509.Certificate{leaf}); err != nil {
		t.Errorf("OCSP disabled: %v", err)
	}
	if resp.hits.Load() != 0 {
		t.Error("responder asked although OCSP is disabled")
	}
}

func TestOCSPConcurrentRequestsShareOneFetch(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	resp := &ocspResponder{ca: root, status: map[string]int{}, delay: 100 * time.Millisecond}
	srv := httptest.NewServer(resp)
	defer srv.Close()
	leaf, _ := root.issue(t, "PC-1", func(c *x509.Certificate) { c.OCSPServer = []string{srv.URL} })
	resp.set(leaf.SerialNumber, ocsp.Good)
	cfg := testConfig(t, nil, root)
	cfg.Server.OCSP.Enabled = true
	v, _ := newVerifier(t, cfg, WithCache(0, 0))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := v.Verify([]*x509.Certificate{leaf})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if n := resp.hits.Load(); n != 1 {
		t.Errorf("20 concurrent verifications made %d OCSP requests, want 1", n)
	}
}
