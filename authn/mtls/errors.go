package mtls

import "errors"

// Sentinel errors for what callers branch on. Verify wraps them with the
// detail a log should keep; [Reason] turns them into words a user may see.
var (
	// ErrNoCertificate: the client presented no certificate.
	ErrNoCertificate = errors.New("no client certificate")
	// ErrUntrusted: the certificate does not chain to a configured client CA.
	ErrUntrusted = errors.New("certificate not issued by a trusted client CA")
	// ErrExpired: the certificate (or one in its chain) has expired.
	ErrExpired = errors.New("certificate expired")
	// ErrNotYetValid: the certificate's validity has not begun.
	ErrNotYetValid = errors.New("certificate not yet valid")
	// ErrRevoked: the CRL or the OCSP responder says the certificate is revoked.
	ErrRevoked = errors.New("certificate revoked")
	// ErrUsage: the certificate may not be used for client authentication.
	ErrUsage = errors.New("certificate not usable for client authentication")
	// ErrNoDeviceID: no device id could be read from the certificate.
	ErrNoDeviceID = errors.New("no device id in certificate")
	// ErrOCSPUnavailable: the revocation status could not be learned from
	// the OCSP responder and the configuration fails closed.
	ErrOCSPUnavailable = errors.New("OCSP status unavailable")
)

// reasons pairs each sentinel with a stable code and safe words in Japanese
// and English. The words say what the user can do; they never carry detail
// from the certificate or the error chain.
var reasons = []struct {
	err    error
	code   string
	ja, en string
}{
	{ErrNoCertificate, "no_certificate", "端末証明書が提示されていません。組織から配布された端末で接続してください",
		"No device certificate was presented. Connect from a device issued by your organisation"},
	{ErrUntrusted, "untrusted", "端末証明書が信頼された認証局から発行されていません",
		"The device certificate was not issued by a trusted authority"},
	{ErrExpired, "expired", "端末証明書の有効期限が切れています。情報政策担当に更新を依頼してください",
		"The device certificate has expired. Ask IT to renew it"},
	{ErrNotYetValid, "not_yet_valid", "端末証明書の有効期間がまだ始まっていません。端末の時刻を確認してください",
		"The device certificate is not valid yet. Check the device's clock"},
	{ErrRevoked, "revoked", "端末証明書は失効しています",
		"The device certificate has been revoked"},
	{ErrUsage, "usage", "この証明書は端末認証に使えません",
		"This certificate cannot be used for device authentication"},
	{ErrNoDeviceID, "no_device_id", "端末証明書から端末を識別できません",
		"The device cannot be identified from its certificate"},
	{ErrOCSPUnavailable, "ocsp_unavailable", "端末証明書の失効確認ができませんでした。しばらくしてからやり直してください",
		"The certificate's revocation status could not be checked. Try again later"},
}

// Reason gives words for err that are safe to show on an error page,
// Japanese and English. Errors that are none of the sentinels get a
// general sentence.
func Reason(err error) (ja, en string) {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.ja, r.en
		}
	}
	return "端末証明書を確認できませんでした", "The device certificate could not be verified"
}

// Code gives a short stable code for err ("expired", "revoked", …) for
// audit records and metrics labels; "" for nil, "error" for anything that
// is none of the sentinels.
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "error"
}
