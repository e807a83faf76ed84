package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, a
// failure must always be an *Errors whose every entry has a line and fits
// on one line, and a success must be fully parsed. Seeds: every file in
// testdata plus testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want *Errors: %v", err, err)
			}
			if len(errs.List) == 0 {
				t.Fatal("empty *Errors")
			}
			for _, e := range errs.List {
				if e.Line < 1 || e.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("error without a place or message: %+v", e)
				}
				if strings.ContainsAny(e.Error(), "\r\n") {
					t.Fatalf("error spans lines: %q", e.Error())
				}
			}
			return
		}
		if cfg.Policy.Location == nil {
			t.Fatal("no policy location")
		}
		for _, r := range cfg.Routes {
			if r.Upstream == nil || (r.Upstream.Scheme != "http" && r.Upstream.Scheme != "https") {
				t.Fatalf("route %q upstream %v", r.Name, r.Upstream)
			}
			if cfg.Route(r.Name) == nil {
				t.Fatalf("Route(%q) = nil", r.Name)
			}
			if _, ok := cfg.Class(r.Class); !ok {
				t.Fatalf("route %q has unknown class %q", r.Name, r.Class)
			}
		}
		for _, z := range cfg.Zones {
			if len(z.Prefixes) == 0 || z.Name == ZoneExternal {
				t.Fatalf("bad zone %+v", z)
			}
			if got := cfg.ZoneOf(z.Prefixes[0].Addr()); got == "" {
				t.Fatal("ZoneOf returned nothing")
			}
		}
		cfg.ZoneOf(netip.IPv6Unspecified())
	})
}
