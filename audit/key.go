package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// signer signs checkpoints with the audit key (ES256).
type signer struct {
	priv *ecdsa.PrivateKey
	key  jwk.Key // private JWK with kid and alg set
	pub  jwk.Set
	kid  string
}

// CreateKey makes a new audit key at path (P-256, PEM, mode 0600) unless
// one is there already; created says which. Replicas that share one key
// (one public key verifies the central table) get it from this file.
func CreateKey(path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("audit key %s: %w", path, err)
	}
	if _, err := loadOrCreateKey(path); err != nil {
		return false, err
	}
	return true, nil
}

// loadOrCreateKey reads the PEM private key at path, creating a new P-256
// key (mode 0600) when the file does not exist.
func loadOrCreateKey(path string) (*signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		priv, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			return nil, fmt.Errorf("generating audit key: %w", gerr)
		}
		der, merr := x509.MarshalPKCS8PrivateKey(priv)
		if merr != nil {
			return nil, fmt.Errorf("encoding audit key: %w", merr)
		}
		data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating audit key directory: %w", err)
		}
		f, oerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if oerr != nil {
			return nil, fmt.Errorf("creating audit key %s: %w", path, oerr)
		}
		if _, werr := f.Write(data); werr != nil {
			f.Close()
			return nil, fmt.Errorf("writing audit key %s: %w", path, werr)
		}
		if serr := f.Sync(); serr != nil {
			f.Close()
			return nil, fmt.Errorf("syncing audit key %s: %w", path, serr)
		}
		if cerr := f.Close(); cerr != nil {
			return nil, fmt.Errorf("closing audit key %s: %w", path, cerr)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading audit key %s: %w", path, err)
	}
	priv, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("audit key %s: %w", path, err)
	}
	s, err := newSigner(priv)
	if err != nil {
		return nil, err
	}
	if err := addRetiredKeys(s.pub, path); err != nil {
		return nil, err
	}
	return s, nil
}

func parsePrivateKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the audit key must be an ECDSA P-256 key (ES256)")
	}
	return ec, nil
}

func newSigner(priv *ecdsa.PrivateKey) (*signer, error) {
	key, err := jwk.FromRaw(priv)
	if err != nil {
		return nil, fmt.Errorf("audit key to JWK: %w", err)
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("audit key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	_ = key.Set(jwk.KeyIDKey, kid)
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256)
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	return &signer{priv: priv, key: key, pub: set, kid: kid}, nil
}

// sign returns the compact JWS of a checkpoint payload.
func (s *signer) sign(p *checkpointPayload) (string, error) {
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, s.kid)
	_ = hdr.Set(jws.TypeKey, "sekisho-audit-checkpoint")
	out, err := jws.Sign(p.marshal(), jws.WithKey(jwa.ES256, s.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("signing checkpoint: %w", err)
	}
	return string(out), nil
}

// verifyCheckpoint checks a compact JWS against keys (matched by kid, ES256
// only) and returns its payload.
func verifyCheckpoint(compact string, keys jwk.Set) (*checkpointPayload, error) {
	msg, err := jws.Verify([]byte(compact), jws.WithKeySet(keys, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(true)))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	// Refuse anything but ES256, whatever the key set allows.
	m, err := jws.Parse([]byte(compact))
	if err != nil || len(m.Signatures()) != 1 || m.Signatures()[0].ProtectedHeaders().Algorithm() != jwa.ES256 {
		return nil, errors.New("checkpoint signature: not a single ES256 signature")
	}
	var p checkpointPayload
	if err := json.Unmarshal(msg, &p); err != nil {
		return nil, fmt.Errorf("checkpoint payload: %w", err)
	}
	return &p, nil
}

// LoadPublicKeys reads the keys that verify checkpoints from path: a JWKS
// (JSON), a PEM public key, or the PEM private key itself.
//
// For the private key, the public keys retired by [RotateKey] beside it
// (<path>.<kid>.pub) are included, so older checkpoints still verify.
func LoadPublicKeys(path string) (jwk.Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit public key: %w", err)
	}
	set, err := ParsePublicKeys(data)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(data); block != nil && block.Type != "PUBLIC KEY" {
		if err := addRetiredKeys(set, path); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// addRetiredKeys adds the public keys retired from the key at keyPath.
func addRetiredKeys(set jwk.Set, keyPath string) error {
	retired, err := filepath.Glob(keyPath + ".*.pub")
	if err != nil {
		return fmt.Errorf("listing retired audit keys: %w", err)
	}
	for _, p := range retired {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("reading retired audit key: %w", err)
		}
		old, err := ParsePublicKeys(data)
		if err != nil {
			return fmt.Errorf("retired audit key %s: %w", p, err)
		}
		for i := 0; i < old.Len(); i++ {
			k, _ := old.Key(i)
			if _, dup := set.LookupKeyID(k.KeyID()); !dup {
				_ = set.AddKey(k)
			}
		}
	}
	return nil
}

// RotateKey replaces the audit key at keyPath with a new P-256 key. The old
// public key stays beside it as <keyPath>.<kid>.pub so that checkpoints
// signed with it still verify ([LoadPublicKeys], [PublicJWKS]). A running
// trail keeps signing with the key it opened with until it is reopened.
// It returns the new key's kid.
func RotateKey(keyPath string) (string, error) {
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return "", fmt.Errorf("reading audit key: %w", err)
	}
	oldPriv, err := parsePrivateKey(data)
	if err != nil {
		return "", fmt.Errorf("audit key %s: %w", keyPath, err)
	}
	old, err := newSigner(oldPriv)
	if err != nil {
		return "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&oldPriv.PublicKey)
	if err != nil {
		return "", fmt.Errorf("encoding the retired audit key: %w", err)
	}
	if err := writeFileAtomic(keyPath+"."+old.kid+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), true); err != nil {
		return "", fmt.Errorf("keeping the retired audit key: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating audit key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("encoding audit key: %w", err)
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), true); err != nil {
		return "", fmt.Errorf("writing audit key %s: %w", keyPath, err)
	}
	_ = syncDir(filepath.Dir(keyPath))
	s, err := newSigner(priv)
	if err != nil {
		return "", err
	}
	return s.kid, nil
}

// ParsePublicKeys is [LoadPublicKeys] on bytes.
func ParsePublicKeys(data []byte) (jwk.Set, error) {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type == "PUBLIC KEY" {
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing audit public key: %w", err)
			}
			ec, ok := k.(*ecdsa.PublicKey)
			if !ok || ec.Curve != elliptic.P256() {
				return nil, errors.New("the audit public key must be ECDSA P-256")
			}
			// Build the set the same way the signer does, so kids agree.
			jk, err := jwk.FromRaw(ec)
			if err != nil {
				return nil, fmt.Errorf("audit public key to JWK: %w", err)
			}
			tp, err := jk.Thumbprint(crypto.SHA256)
			if err != nil {
				return nil, fmt.Errorf("audit key thumbprint: %w", err)
			}
			_ = jk.Set(jwk.KeyIDKey, base64.RawURLEncoding.EncodeToString(tp))
			_ = jk.Set(jwk.AlgorithmKey, jwa.ES256)
			set := jwk.NewSet()
			_ = set.AddKey(jk)
			return set, nil
		}
		priv, err := parsePrivateKey(data)
		if err != nil {
			return nil, err
		}
		s, err := newSigner(priv)
		if err != nil {
			return nil, err
		}
		return s.pub, nil
	}
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parsing audit JWKS: %w", err)
	}
	if set.Len() == 0 {
		return nil, errors.New("the audit JWKS holds no key")
	}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if _, ok := k.Get(jwk.AlgorithmKey); !ok {
			_ = k.Set(jwk.AlgorithmKey, jwa.ES256)
		}
		if k.KeyID() == "" {
			tp, err := k.Thumbprint(crypto.SHA256)
			if err == nil {
				_ = k.Set(jwk.KeyIDKey, base64.RawURLEncoding.EncodeToString(tp))
			}
		}
	}
	return set, nil
}

// PublicJWKS reads the audit key at keyPath (PEM private key) and returns
// its public JWKS as JSON — with the keys retired by [RotateKey] — for
// `sekisho audit key` and for auditors.
func PublicJWKS(keyPath string) ([]byte, error) {
	set, err := LoadPublicKeys(keyPath)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(set, "", "  ")
}
