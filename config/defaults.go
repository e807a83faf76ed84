package config

import "time"

// The classes sekisho ships, after the 総務省 guideline's 自治体機密性
// classes. The guideline is revised every 6–12 months, so these are data:
// a configuration's classes: section overrides them field by field (a key
// that is present replaces the default's value; an absent key keeps it)
// and may add classes of its own.
//
// Keep this table and docs/config.md in step.
var defaultClasses = map[string]Class{
	"3A": {Label: "機密性3A", MaxAuthAge: 15 * time.Minute, Require: []string{FactorPasskeyUV, FactorDeviceCert, FactorRegisteredDevice}, Audit: AuditSync},
	"3B": {Label: "機密性3B", MaxAuthAge: time.Hour, Require: []string{FactorPasskeyUV, FactorDeviceCert}, Audit: AuditSync},
	"3C": {Label: "機密性3C", MaxAuthAge: 4 * time.Hour, Require: []string{FactorPasskeyUV}, Audit: AuditAsync},
	"2":  {Label: "機密性2", MaxAuthAge: 10 * time.Hour, Require: []string{FactorPasskey}, Audit: AuditAsync},
	"1":  {Label: "機密性1", Require: []string{}, Audit: AuditAsync},
}

// DefaultClasses returns a copy of the classes sekisho ships.
func DefaultClasses() map[string]Class {
	out := make(map[string]Class, len(defaultClasses))
	for name, c := range defaultClasses {
		out[name] = c.clone()
	}
	return out
}

func (c Class) clone() Class {
	c.Require = append([]string{}, c.Require...)
	if c.Zones != nil {
		c.Zones = append([]string{}, c.Zones...)
	}
	return c
}

// Factors a class may require (Class.Require). See docs/architecture.md for
// how each is satisfied.
const (
	FactorPasskey          = "passkey"
	FactorPasskeyUV        = "passkey_uv"
	FactorDeviceCert       = "device_cert"
	FactorRegisteredDevice = "registered_device"
	FactorDeviceOwned      = "device_owned"
)

// Values of enumerated keys.
const (
	AuditSync  = "sync"
	AuditAsync = "async"

	ModeEnforce = "enforce"
	ModeShadow  = "shadow"

	ClientCertOptional = "optional"
	ClientCertRequired = "required"

	SegmentMyNumber = "mynumber"
	SegmentLGWAN    = "lgwan"
	SegmentInternet = "internet"

	// ZoneExternal is the zone of every address in no configured zone; it
	// cannot be configured.
	ZoneExternal = "external"
)

// Defaults for keys left out of the file. config.go's field comments say
// the same; keep them in step.
const (
	DefaultListen             = ":8443"
	DefaultShutdownTimeout    = 30 * time.Second
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout        = 120 * time.Second
	DefaultMaxHeaderBytes     = 64 << 10
	DefaultParkIdleAfter      = 1000
	DefaultGCHeapFloorMiB     = 64
	DefaultLanguage           = "ja"
	DefaultStoreDriver        = "sqlite"
	DefaultSQLiteDSN          = "data/sekisho.db"
	DefaultRPName             = "sekisho"
	DefaultUserVerification   = "required"
	DefaultCeremonyTimeout    = 5 * time.Minute
	DefaultSessionLifetime    = 10 * time.Hour
	DefaultSessionIdle        = 30 * time.Minute
	DefaultKeyRotation        = 24 * time.Hour
	DefaultAssertionLifetime  = 60 * time.Second
	DefaultRouteTimeout       = 60 * time.Second
	DefaultPolicyModel        = "builtin"
	DefaultPolicyFile         = "policy.csv"
	DefaultTimezone           = "Asia/Tokyo"
	DefaultAuditDir           = "data/audit"
	DefaultAuditKeyName       = "audit.key"
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 60 * time.Second
	DefaultRotateSize         = 256 << 20
	DefaultRetention          = 8760 * time.Hour
	DefaultIDFrom             = "san_uri"
	DefaultURIPrefix          = "urn:sekisho:device:"
	DefaultOCSPTimeout        = 3 * time.Second
)
