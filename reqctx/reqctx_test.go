package reqctx_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/sekisho/sekisho/reqctx"
)

type parentKey struct{}

func TestContextCarriesInfo(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), parentKey{}, "p"))
	c := &reqctx.Context{Context: parent}
	c.Info.RequestID = "abc"
	var ctx context.Context = c
	if got := reqctx.From(ctx); got != &c.Info || got.RequestID != "abc" {
		t.Fatalf("From = %+v, want the carried Info", got)
	}
	if got := ctx.Value(parentKey{}); got != "p" {
		t.Fatalf("parent value = %v, want p", got)
	}
	// A context derived from it still finds the Info and ends with the parent.
	child, stop := context.WithCancel(ctx)
	defer stop()
	if reqctx.From(child) != &c.Info {
		t.Fatal("From on a derived context lost the Info")
	}
	cancel()
	<-child.Done()
	if ctx.Err() == nil {
		t.Fatal("Err = nil after the parent ended")
	}
}

func TestWithAndFrom(t *testing.T) {
	info := &reqctx.Info{RequestID: "x"}
	if got := reqctx.From(reqctx.With(context.Background(), info)); got != info {
		t.Fatalf("From(With(info)) = %p, want %p", got, info)
	}
	if got := reqctx.From(context.Background()); got != nil {
		t.Fatalf("From(Background) = %+v, want nil", got)
	}
}

func TestIPString(t *testing.T) {
	var i reqctx.Info
	a := netip.MustParseAddr("192.0.2.7")
	i.SetIP(a, "given")
	if i.IPString() != "given" {
		t.Errorf("IPString %q, want the text SetIP gave", i.IPString())
	}
	i.IP = netip.MustParseAddr("2001:db8::1") // set without SetIP
	if i.IPString() != "2001:db8::1" {
		t.Errorf("IPString %q after IP changed, want the new address", i.IPString())
	}
	var z reqctx.Info
	if z.IPString() != "invalid IP" {
		t.Errorf("zero Info: %q", z.IPString())
	}
}
