// Package authntest is a FIDO2 authenticator in software for tests of
// sekisho and of systems behind it: ES256 keys, "none" attestation,
// discoverable credentials. It builds real clientDataJSON,
// authenticatorData and attestationObject bytes and real signatures, so a
// relying party verifies them exactly as it would a browser's. Overrides
// bend one ceremony the way an attacker or a broken client would.
package authntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator is a FIDO2 authenticator in software: ES256 keys,
// "none" attestation, discoverable credentials. It builds real
// clientDataJSON, authenticatorData and attestationObject bytes and real
// signatures, so the server verifies them exactly as it would a browser's.
type Authenticator struct {
	// AAGUID is reported in attestation.
	AAGUID [16]byte
	// UV, BE and BS are the flags it reports (user verified, backup
	// eligible, backed up).
	UV, BE, BS bool
	// Creds are the credentials it keeps (see Keep).
	Creds []*Credential
}

// Credential is one discoverable credential the authenticator holds.
type Credential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	RPID       string
	UserHandle []byte
	Counter    uint32
}

// New returns an authenticator that verifies its user (UV).
func New() *Authenticator {
	a := &Authenticator{UV: true}
	copy(a.AAGUID[:], []byte("sekisho-softauth"))
	return a
}

// Overrides bends one ceremony the way an attacker or a broken
// client would.
type Overrides struct {
	Origin    string      // clientDataJSON origin; default the ceremony's
	RPID      string      // the RP id hashed into authenticatorData; default the options'
	Challenge string      // clientDataJSON challenge; default the options'
	NoUV      bool        // clear the UV flag
	Counter   *uint32     // the signature counter to report; default the credential's next
	Cred      *Credential // which credential Get uses; default the last kept for the RP
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) flags(uv bool) byte {
	f := byte(0x01) // UP
	if uv {
		f |= 0x04
	}
	if a.BE {
		f |= 0x08
	}
	if a.BS {
		f |= 0x10
	}
	return f
}

// Create answers {"publicKey": PublicKeyCredentialCreationOptions} with the
// toJSON() form of a new PublicKeyCredential.
func (a *Authenticator) Create(optionsJSON []byte, origin string, o Overrides) ([]byte, *Credential, error) {
	var opts struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
			AuthenticatorSelection struct {
				ResidentKey      string `json:"residentKey"`
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(optionsJSON, &opts); err != nil {
		return nil, nil, fmt.Errorf("creation options: %w", err)
	}
	pk := opts.PublicKey
	if pk.AuthenticatorSelection.ResidentKey != "required" {
		return nil, nil, fmt.Errorf("options do not require a discoverable credential: %q", pk.AuthenticatorSelection.ResidentKey)
	}
	handle, err := base64.RawURLEncoding.DecodeString(pk.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("user.id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	rpID := pk.RP.ID
	if o.RPID != "" {
		rpID = o.RPID
	}
	cred := &Credential{ID: id, Key: key, RPID: pk.RP.ID, UserHandle: handle}

	pub, err := key.PublicKey.ECDH()
	if err != nil {
		return nil, nil, err
	}
	raw := pub.Bytes() // 0x04 || X || Y
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
	if err != nil {
		return nil, nil, err
	}
	rpHash := sha256.Sum256([]byte(rpID))
	authData := append([]byte{}, rpHash[:]...)
	authData = append(authData, a.flags(a.UV && !o.NoUV)|0x40) // AT
	authData = binary.BigEndian.AppendUint32(authData, 0)
	authData = append(authData, a.AAGUID[:]...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, cose...)
	attObj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, nil, err
	}
	challenge := pk.Challenge
	if o.Challenge != "" {
		challenge = o.Challenge
	}
	if o.Origin != "" {
		origin = o.Origin
	}
	out, err := json.Marshal(map[string]any{
		"id": b64(id), "rawId": b64(id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":     b64(clientData("webauthn.create", challenge, origin)),
			"attestationObject":  b64(attObj),
			"authenticatorData":  b64(authData),
			"transports":         []string{"internal"},
			"publicKeyAlgorithm": -7,
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return out, cred, nil
}

// Keep adds a credential Create returned to the authenticator's memory.
func (a *Authenticator) Keep(c *Credential) { a.Creds = append(a.Creds, c) }

// Get answers {"publicKey": PublicKeyCredentialRequestOptions} with the
// toJSON() form of an assertion by a discoverable credential for the RP.
func (a *Authenticator) Get(optionsJSON []byte, origin string, o Overrides) ([]byte, error) {
	var opts struct {
		PublicKey struct {
			Challenge        string `json:"challenge"`
			RPID             string `json:"rpId"`
			UserVerification string `json:"userVerification"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(optionsJSON, &opts); err != nil {
		return nil, fmt.Errorf("request options: %w", err)
	}
	pk := opts.PublicKey
	cred := o.Cred
	if cred == nil {
		for _, c := range a.Creds {
			if c.RPID == pk.RPID {
				cred = c
			}
		}
	}
	if cred == nil {
		return nil, fmt.Errorf("no credential for rp %q", pk.RPID)
	}
	rpID := pk.RPID
	if o.RPID != "" {
		rpID = o.RPID
	}
	cred.Counter++
	counter := cred.Counter
	if o.Counter != nil {
		counter = *o.Counter
	}
	rpHash := sha256.Sum256([]byte(rpID))
	authData := append([]byte{}, rpHash[:]...)
	authData = append(authData, a.flags(a.UV && !o.NoUV))
	authData = binary.BigEndian.AppendUint32(authData, counter)
	challenge := pk.Challenge
	if o.Challenge != "" {
		challenge = o.Challenge
	}
	if o.Origin != "" {
		origin = o.Origin
	}
	cdj := clientData("webauthn.get", challenge, origin)
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(append([]byte{}, authData...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.Key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(cred.ID), "rawId": b64(cred.ID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(cdj),
			"authenticatorData": b64(authData),
			"signature":         b64(sig),
			"userHandle":        b64(cred.UserHandle),
		},
	})
}
