package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

// isUsageError reports whether err came from cobra's flag or argument parsing.
func isUsageError(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown flag") || strings.HasPrefix(s, "unknown command") ||
		strings.HasPrefix(s, "unknown shorthand") || strings.Contains(s, "flag needs an argument") ||
		strings.HasPrefix(s, "required flag") || strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "invalid argument")
}

// addConfigFlag registers --config on cmd.
func addConfigFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "config", "c", "sekisho.yaml", "設定ファイル (configuration file)")
}

// loadConfig loads and validates the configuration at path.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadConfigAndStore loads the configuration at path and opens its store;
// the caller closes the store.
func loadConfigAndStore(ctx context.Context, path string) (*config.Config, store.Store, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// loadAdmin is loadConfigAndStore for the verbs that change the store: it
// also opens the audit trail (or its spool) for their admin records, so
// that nothing is done when either cannot be opened. The caller closes st.
func loadAdmin(ctx context.Context, path string) (cfg *config.Config, st store.Store, record func(action, target, detail string) error, err error) {
	if cfg, st, err = loadConfigAndStore(ctx, path); err != nil {
		return nil, nil, nil, err
	}
	if record, err = adminAudit(cfg); err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return cfg, st, record, nil
}

// openStore opens the store the configuration names.
func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	st, err := store.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", cfg.Store.Driver, err)
	}
	return st, nil
}

// adminAudit opens the audit trail for an administrative command before it
// acts (so that an unwritable trail stops the command rather than leaving
// it unrecorded) and returns the function that records what it did. While
// a gateway holds the trail, the record goes to its spool and the gateway
// chains it within a second (audit.OpenWriter).
func adminAudit(cfg *config.Config) (record func(action, target, detail string) error, err error) {
	w, _, err := audit.OpenWriter(cfg.Audit)
	if err != nil {
		return nil, fmt.Errorf("監査証跡を開けないため実行しません (opening the audit trail; nothing done): %w", err)
	}
	return func(action, target, detail string) error {
		rec := &audit.Record{Event: audit.EventAdmin, User: operator(), Action: action, Target: target,
			Detail: detail, Decision: audit.DecisionAllow, Enforced: true, Rule: "cli"}
		if err := w.Append(rec); err != nil {
			w.Close()
			return fmt.Errorf("recording %s in the audit trail: %w", action, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("recording %s in the audit trail: %w", action, err)
		}
		return nil
	}, nil
}
