package config

import (
	"os"
	"strconv"
)

// Option changes what [Load] and [Parse] check.
type Option func(*options)

type options struct {
	checkFiles bool
}

// CheckFiles makes [Load] also refuse a configuration whose files are
// missing or unreadable: the TLS certificate and key, client CAs, the CRL,
// upstream and sink CAs, and the policy file. Only their presence is
// checked here; their contents are checked by the packages that use them.
// `sekisho config check` and `serve` use it; tests that build a
// configuration without real files leave it out.
func CheckFiles() Option { return func(o *options) { o.checkFiles = true } }

// files checks the resolved file names of v.cfg, reporting at the key that
// names each file.
func (v *validator) files() {
	c := v.cfg
	check := func(key, path string) {
		if path == "" {
			return
		}
		fi, err := os.Stat(path)
		switch {
		case os.IsNotExist(err):
			v.errorf(key, "%s: no such file (ファイルがありません)", path)
		case err != nil:
			v.errorf(key, "%s: cannot be read: %v (ファイルを読めません)", path, err)
		case fi.IsDir():
			v.errorf(key, "%s is a directory, not a file (ディレクトリではなくファイルを指定してください)", path)
		default:
			f, err := os.Open(path)
			if err != nil {
				v.errorf(key, "%s: cannot be read: %v (ファイルを読めません)", path, err)
				return
			}
			f.Close()
		}
	}
	check("server.tls.cert", c.Server.TLS.Cert)
	check("server.tls.key", c.Server.TLS.Key)
	for i, ca := range c.Server.ClientCA {
		check(idx("server.client_ca", i), ca)
	}
	check("server.crl", c.Server.CRL)
	for i, r := range c.Routes {
		check("routes["+strconv.Itoa(i)+"].upstream_ca", r.UpstreamCA)
	}
	for i, s := range c.Audit.Sinks {
		check("audit.sinks["+strconv.Itoa(i)+"].ca", s.CA)
	}
	check("policy.file", c.Policy.File)
}
