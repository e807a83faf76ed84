package audit_test

import (
	"context"
	"fmt"
	"os"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// The proxy opens the trail once, appends a durable decision record for a
// sync-class request before forwarding it, and an outcome record after.
// Auditors verify the directory with the exported public key.
func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)

	trail, err := audit.Open(config.Audit{Dir: dir, Redact: []string{"my_number"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := &audit.Record{
		Event: audit.EventAccess, RequestID: "req-1", User: "tanaka", Device: "pc-0012",
		AMR: []string{"hwk", "uv"}, Zone: "chonai", Route: "juki", Class: "3B", Segment: "mynumber",
		Method: "GET", Path: "/search?my_number=123456789012", Decision: audit.DecisionAllow, Enforced: true,
	}
	if err := trail.AppendDurable(context.Background(), rec); err != nil {
		fmt.Println("fail closed (503):", err)
		return
	}
	outcome := *rec
	outcome.Status, outcome.Bytes, outcome.DurationMS = 200, 1024, 3.5
	_ = trail.Append(&outcome)
	keys := trail.PublicJWKS() // export this and keep it away from the trail
	if err := trail.Close(); err != nil {
		fmt.Println(err)
		return
	}

	res, err := audit.Verify(dir, keys)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("intact:", res.OK(), "closed:", res.Closed)
	recs, _, _ := audit.QueryAll(dir, audit.Filter{RequestID: "req-1"})
	for _, r := range recs {
		fmt.Println(r.Seq, r.Path, r.Status)
	}
	// Output:
	// intact: true closed: true
	// 3 /search?my_number=REDACTED 0
	// 4 /search?my_number=REDACTED 200
}
