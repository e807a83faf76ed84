package monitor_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/monitor"
)

// The gateway hands every appended record to Observe; alerts come back as
// audit records through the sink (in sekisho, the trail's Append).
func Example() {
	sink := func(r *audit.Record) error {
		fmt.Printf("%s %s %s\n", r.Event, r.Action, r.Target)
		return nil
	}
	m, err := monitor.New(config.Monitor{}, monitor.WithAlertSink(sink),
		monitor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)

	// A passkey whose signature counter went backwards: a cloned authenticator?
	m.Observe(&audit.Record{
		Time: time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC), Event: audit.EventAuthn,
		Action: "counter_regression", User: "abe", RequestID: "r-1", Decision: audit.DecisionDeny, Enforced: true,
	})
	if err := m.Flush(ctx); err != nil {
		panic(err)
	}
	a := m.Recent(1)[0]
	fmt.Println(a.Rule, a.Severity, a.Subject, a.Evidence)
	// Output:
	// alert counter_regression abe
	// counter_regression critical abe [r-1]
}
