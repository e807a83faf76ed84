package mtls

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// crlSet is one loaded CRL file: every revoked (issuer, serial) pair of
// every CRL in it. It is immutable once built; a reload builds a new one.
type crlSet struct {
	// gen increases with every successful load; cached verifications made
	// under an older generation are not used.
	gen     uint64
	revoked map[string]time.Time
	// nextUpdate is the earliest nextUpdate of the CRLs in the file.
	nextUpdate time.Time
	stat       fileStamp
	count      int
}

type fileStamp struct {
	mod  time.Time
	size int64
	info os.FileInfo
}

func (a fileStamp) same(b fileStamp) bool {
	return a.info != nil && b.info != nil && a.mod.Equal(b.mod) && a.size == b.size && os.SameFile(a.info, b.info)
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), info: fi}, nil
}

func revocationKey(rawIssuer []byte, serial *big.Int) string {
	return string(rawIssuer) + "\x00" + serial.Text(16)
}

func (s *crlSet) isRevoked(cert *x509.Certificate) bool {
	if s == nil || len(s.revoked) == 0 {
		return false
	}
	_, ok := s.revoked[revocationKey(cert.RawIssuer, cert.SerialNumber)]
	return ok
}

// parseCRLFile reads a PEM (one or more "X509 CRL" blocks) or DER CRL file
// and checks each CRL's signature against the client CAs.
func parseCRLFile(data []byte, anchors []*x509.Certificate) ([]*x509.RevocationList, error) {
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for rest := data; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type == "X509 CRL" {
				ders = append(ders, block.Bytes)
			}
		}
		if len(ders) == 0 {
			return nil, errors.New("no X509 CRL PEM block")
		}
	} else {
		ders = [][]byte{data}
	}
	var crls []*x509.RevocationList
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		if err := checkCRLIssuer(crl, anchors); err != nil {
			return nil, fmt.Errorf("CRL %d (issuer %s): %w", i+1, crl.Issuer, err)
		}
		crls = append(crls, crl)
	}
	return crls, nil
}

func checkCRLIssuer(crl *x509.RevocationList, anchors []*x509.Certificate) error {
	for _, ca := range anchors {
		if !bytes.Equal(ca.RawSubject, crl.RawIssuer) {
			continue
		}
		if err := crl.CheckSignatureFrom(ca); err == nil {
			return nil
		}
	}
	return errors.New("not signed by any certificate in server.client_ca")
}

// loadCRL reads the CRL file and builds a new set with generation gen.
func (v *Verifier) loadCRL(gen uint64) (*crlSet, error) {
	st, err := stamp(v.crlPath)
	if err != nil {
		return nil, fmt.Errorf("reading CRL: %w", err)
	}
	data, err := os.ReadFile(v.crlPath)
	if err != nil {
		return nil, fmt.Errorf("reading CRL: %w", err)
	}
	crls, err := parseCRLFile(data, v.anchors)
	if err != nil {
		return nil, fmt.Errorf("parsing CRL %s: %w", v.crlPath, err)
	}
	set := &crlSet{gen: gen, revoked: map[string]time.Time{}, stat: st}
	for _, crl := range crls {
		for _, e := range crl.RevokedCertificateEntries {
			set.revoked[revocationKey(crl.RawIssuer, e.SerialNumber)] = e.RevocationTime
		}
		if !crl.NextUpdate.IsZero() && (set.nextUpdate.IsZero() || crl.NextUpdate.Before(set.nextUpdate)) {
			set.nextUpdate = crl.NextUpdate
		}
	}
	set.count = len(set.revoked)
	return set, nil
}

// Reload reads the CRL file again now. A CRL that cannot be read, parsed or
// verified is refused and the one in use stays in force; the error says why.
// Verify never uses a cached verification made before a successful Reload.
// The CRL is also reloaded by itself when the file changes.
func (v *Verifier) Reload() error {
	if v.crlPath == "" {
		return nil
	}
	v.reloadMu.Lock()
	defer v.reloadMu.Unlock()
	old := v.crl.Load()
	set, err := v.loadCRL(old.gen + 1)
	if err != nil {
		v.log.Error("CRL reload refused; keeping the previous CRL", "file", v.crlPath, "err", err)
		// The same broken file is not retried (nor logged) at every poll.
		v.refused, _ = stamp(v.crlPath)
		return err
	}
	v.refused = fileStamp{}
	v.crl.Store(set)
	v.cache.Purge()
	v.log.Info("CRL loaded", "file", v.crlPath, "revoked", set.count, "next_update", set.nextUpdate)
	v.warnIfStale(set, v.now(), true)
	return nil
}

// reloadIfChanged reloads when the file's stamp differs from the loaded one.
func (v *Verifier) reloadIfChanged() {
	st, err := stamp(v.crlPath)
	if err != nil {
		// A rename-into-place passes through a moment without the file;
		// the next event or poll catches the new one.
		return
	}
	if st.same(v.crl.Load().stat) {
		return
	}
	v.reloadMu.Lock()
	refused := st.same(v.refused)
	v.reloadMu.Unlock()
	if refused {
		return
	}
	_ = v.Reload()
}

// warnIfStale logs a CRL past its nextUpdate, at most once an hour unless
// force is set.
func (v *Verifier) warnIfStale(set *crlSet, now time.Time, force bool) {
	if set.nextUpdate.IsZero() || !now.After(set.nextUpdate) {
		return
	}
	last := v.staleWarned.Load()
	if !force && last != 0 && now.Sub(time.Unix(last, 0)) < time.Hour {
		return
	}
	if v.staleWarned.CompareAndSwap(last, now.Unix()) || force {
		v.log.Warn("CRL is past its nextUpdate; publish a new one (certificates it lists stay refused)",
			"file", v.crlPath, "next_update", set.nextUpdate)
	}
}

// watchCRL reloads the CRL when its directory reports a change (fsnotify;
// the directory, so that rename-into-place and Kubernetes' symlink swaps are
// seen) and, as a fallback for file systems without notifications, every
// poll interval.
func (v *Verifier) watchCRL() {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		v.log.Warn("CRL change notifications unavailable; polling only", "err", err)
	} else if err := w.Add(filepath.Dir(v.crlPath)); err != nil {
		w.Close()
		w = nil
		v.log.Warn("CRL change notifications unavailable; polling only", "err", err)
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		if w != nil {
			defer w.Close()
		}
		var events chan fsnotify.Event
		var errs chan error
		if w != nil {
			events, errs = w.Events, w.Errors
		}
		poll := time.NewTicker(v.crlPoll)
		defer poll.Stop()
		// Writers often produce several events per change: wait for quiet.
		debounce := time.NewTimer(time.Hour)
		debounce.Stop()
		for {
			select {
			case <-v.done:
				return
			case _, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				debounce.Reset(50 * time.Millisecond)
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				v.log.Warn("CRL watcher", "err", err)
			case <-debounce.C:
				v.reloadIfChanged()
			case <-poll.C:
				v.reloadIfChanged()
				v.warnIfStale(v.crl.Load(), v.now(), false)
			}
		}
	}()
}
