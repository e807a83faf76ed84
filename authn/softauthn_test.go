package authn

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

// softAuthenticator is a FIDO2 authenticator in software: ES256 keys,
// "none" attestation, discoverable credentials. It builds real
// clientDataJSON, authenticatorData and attestationObject bytes and real
// signatures, so the server verifies them exactly as it would a browser's.
type softAuthenticator struct {
	aaguid [16]byte
	// Flags it reports.
	uv, be, bs bool
	creds      []*softCred
}

type softCred struct {
	id         []byte
	key        *ecdsa.PrivateKey
	rpID       string
	userHandle []byte
	counter    uint32
}

func newSoftAuthenticator() *softAuthenticator {
	a := &softAuthenticator{uv: true}
	copy(a.aaguid[:], []byte("sekisho-softauth"))
	return a
}

// ceremonyOverrides bends one ceremony the way an attacker or a broken
// client would.
type ceremonyOverrides struct {
	origin    string // clientDataJSON origin; default the ceremony's
	rpID      string // the RP id hashed into authenticatorData; default the options'
	challenge string // clientDataJSON challenge; default the options'
	noUV      bool   // clear the UV flag
	counter   *uint32
	cred      *softCred // which credential to use for get
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func clientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

func (a *softAuthenticator) flags(uv bool) byte {
	f := byte(0x01) // UP
	if uv {
		f |= 0x04
	}
	if a.be {
		f |= 0x08
	}
	if a.bs {
		f |= 0x10
	}
	return f
}

// create answers {"publicKey": PublicKeyCredentialCreationOptions} with the
// toJSON() form of a new PublicKeyCredential.
func (a *softAuthenticator) create(optionsJSON []byte, origin string, o ceremonyOverrides) ([]byte, *softCred, error) {
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
	if o.rpID != "" {
		rpID = o.rpID
	}
	cred := &softCred{id: id, key: key, rpID: pk.RP.ID, userHandle: handle}

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
	authData = append(authData, a.flags(a.uv && !o.noUV)|0x40) // AT
	authData = binary.BigEndian.AppendUint32(authData, 0)
	authData = append(authData, a.aaguid[:]...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, cose...)
	attObj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, nil, err
	}
	challenge := pk.Challenge
	if o.challenge != "" {
		challenge = o.challenge
	}
	if o.origin != "" {
		origin = o.origin
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

// keep adds a credential create returned to the authenticator's memory.
func (a *softAuthenticator) keep(c *softCred) { a.creds = append(a.creds, c) }

// get answers {"publicKey": PublicKeyCredentialRequestOptions} with the
// toJSON() form of an assertion by a discoverable credential for the RP.
func (a *softAuthenticator) get(optionsJSON []byte, origin string, o ceremonyOverrides) ([]byte, error) {
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
	cred := o.cred
	if cred == nil {
		for _, c := range a.creds {
			if c.rpID == pk.RPID {
				cred = c
			}
		}
	}
	if cred == nil {
		return nil, fmt.Errorf("no credential for rp %q", pk.RPID)
	}
	rpID := pk.RPID
	if o.rpID != "" {
		rpID = o.rpID
	}
	cred.counter++
	counter := cred.counter
	if o.counter != nil {
		counter = *o.counter
	}
	rpHash := sha256.Sum256([]byte(rpID))
	authData := append([]byte{}, rpHash[:]...)
	authData = append(authData, a.flags(a.uv && !o.noUV))
	authData = binary.BigEndian.AppendUint32(authData, counter)
	challenge := pk.Challenge
	if o.challenge != "" {
		challenge = o.challenge
	}
	if o.origin != "" {
		origin = o.origin
	}
	cdj := clientData("webauthn.get", challenge, origin)
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(append([]byte{}, authData...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(cred.id), "rawId": b64(cred.id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(cdj),
			"authenticatorData": b64(authData),
			"signature":         b64(sig),
			"userHandle":        b64(cred.userHandle),
		},
	})
}
