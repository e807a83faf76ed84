package config_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/sekisho/sekisho/config"
)

func ExampleLoad() {
	cfg, err := config.Load("testdata/good.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	r := cfg.Route("zaimu")
	fmt.Println(r.Host, "→", r.Upstream, "class", r.Class, r.Mode)
	fmt.Println(cfg.ZoneOf(netip.MustParseAddr("10.1.20.30")), cfg.ZoneOf(netip.MustParseAddr("198.51.100.1")))
	c, _ := cfg.Class("3A")
	fmt.Println(c.Label, c.MaxAuthAge, c.Require, c.Audit)

	// A file with mistakes: every one is reported with file, line and key.
	_, err = config.Load("testdata/bad-syntax.yaml")
	var errs *config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs.List {
			fmt.Println(e.Line, e.Msg)
		}
	}
	// Output:
	// zaimu.gw.example.lg.jp → http://10.2.0.10:8080 class 2 enforce
	// chonai external
	// 機密性3A 15m0s [passkey_uv device_cert] sync
	// 3 YAML syntax error: found character that cannot start any token (YAML の書き方に誤りがあります)
}
