package mtls

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

const (
	// maxOCSPResponse bounds how much of a responder's answer is read.
	maxOCSPResponse = 64 << 10
	// ocspBackoff: after a responder failed, it is not asked again for this
	// long; in fail-open mode certificates pass meanwhile, in fail-closed
	// mode they are refused without waiting for another timeout.
	ocspBackoff = 30 * time.Second
	// ocspNoNextUpdate is how long a response without nextUpdate is used.
	ocspNoNextUpdate = 5 * time.Minute
	// ocspSkew tolerates a responder clock slightly ahead of ours.
	ocspSkew = 5 * time.Minute
)

// ocspAnswer is a verified OCSP response, cached until NextUpdate.
type ocspAnswer struct {
	status    int
	revokedAt time.Time
	until     time.Time
}

// checkOCSP asks the certificate's responder (or the cache) for its status.
// It returns when the answer stops being usable, for the verification
// cache. An unreachable responder is an ErrOCSPUnavailable, which the caller
// turns into a pass when the configuration fails open.
func (v *Verifier) checkOCSP(leaf, issuer *x509.Certificate, now time.Time) (time.Time, error) {
	key := revocationKey(leaf.RawIssuer, leaf.SerialNumber)
	if a, ok := v.ocspAnswers.Get(key); ok && now.Before(a.until) {
		return a.until, a.err()
	}
	url := leaf.OCSPServer[0]
	if until, ok := v.ocspDown.Get(url); ok && now.Before(until) {
		return until, fmt.Errorf("%w: responder %s failed recently", ErrOCSPUnavailable, url)
	}
	// Requests for the same certificate arriving together share one fetch.
	v.ocspMu.Lock()
	if c, ok := v.ocspInFlight[key]; ok {
		v.ocspMu.Unlock()
		<-c.done
		return c.until, c.err
	}
	c := &ocspCall{done: make(chan struct{})}
	v.ocspInFlight[key] = c
	v.ocspMu.Unlock()
	defer func() {
		v.ocspMu.Lock()
		delete(v.ocspInFlight, key)
		v.ocspMu.Unlock()
		close(c.done)
	}()

	a, err := v.fetchOCSP(url, leaf, issuer, now)
	if err != nil {
		c.until = now.Add(ocspBackoff)
		v.ocspDown.Add(url, c.until)
		c.err = fmt.Errorf("%w: %w", ErrOCSPUnavailable, err)
		return c.until, c.err
	}
	v.ocspAnswers.Add(key, a)
	c.until, c.err = a.until, a.err()
	return c.until, c.err
}

// ocspCall is one OCSP fetch in progress; until and err are set before done
// is closed.
type ocspCall struct {
	done  chan struct{}
	until time.Time
	err   error
}

func (a ocspAnswer) err() error {
	switch a.status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return fmt.Errorf("%w: OCSP responder says revoked at %s", ErrRevoked, a.revokedAt.UTC().Format(time.RFC3339))
	default:
		// "unknown" comes from a working responder that does not know the
		// certificate: not a reachability problem, so never failed open.
		return fmt.Errorf("%w: OCSP responder does not know the certificate", errOCSPUnknown)
	}
}

// errOCSPUnknown is an ErrOCSPUnavailable that fail-open does not excuse.
var errOCSPUnknown = fmt.Errorf("%w (status unknown)", ErrOCSPUnavailable)

func (v *Verifier) fetchOCSP(url string, leaf, issuer *x509.Certificate, now time.Time) (ocspAnswer, error) {
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return ocspAnswer{}, fmt.Errorf("creating OCSP request: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), v.ocspTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return ocspAnswer{}, fmt.Errorf("OCSP request to %s: %w", url, err)
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	resp, err := v.client.Do(hreq)
	if err != nil {
		return ocspAnswer{}, fmt.Errorf("OCSP request to %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ocspAnswer{}, fmt.Errorf("OCSP request to %s: HTTP %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse+1))
	if err != nil {
		return ocspAnswer{}, fmt.Errorf("reading OCSP response from %s: %w", url, err)
	}
	if len(body) > maxOCSPResponse {
		return ocspAnswer{}, fmt.Errorf("OCSP response from %s larger than %d bytes", url, maxOCSPResponse)
	}
	// ParseResponseForCert checks the signature: by the issuer, or by a
	// delegated responder certificate that the issuer signed for OCSP.
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) {
			return ocspAnswer{}, fmt.Errorf("OCSP responder %s: %s", url, re.Status)
		}
		return ocspAnswer{}, fmt.Errorf("parsing OCSP response from %s: %w", url, err)
	}
	if r.ThisUpdate.After(now.Add(ocspSkew)) {
		return ocspAnswer{}, fmt.Errorf("OCSP response from %s is from the future (thisUpdate %s)", url, r.ThisUpdate)
	}
	until := r.NextUpdate
	if until.IsZero() {
		until = now.Add(ocspNoNextUpdate)
	} else if !now.Before(until) {
		return ocspAnswer{}, fmt.Errorf("OCSP response from %s is stale (nextUpdate %s)", url, r.NextUpdate)
	}
	return ocspAnswer{status: r.Status, revokedAt: r.RevokedAt, until: until}, nil
}
