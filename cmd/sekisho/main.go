// Command sekisho is the zero-trust access gateway: one binary whose verbs
// run the gateway, the demo, and the tools for IT staff and auditors.
// main only parses and wires; the work is in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := newRootCmd()
	err := root.ExecuteContext(context.Background())
	os.Exit(exitCode(err))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sekisho",
		Short: "関所: 自治体向けゼロトラスト・アクセスゲートウェイ (zero-trust access gateway)",
		Long: `sekisho (関所) は、職員がパスキーと端末証明書で庁内システムへ接続するための
ゼロトラスト・アクセスゲートウェイです。すべての要求を情報資産の機密性分類
ごとのポリシーで判定し、改ざん検知可能な監査証跡に記録します。

sekisho is an identity-aware gateway: passkeys and device certificates,
per-asset-class policy, and a tamper-evident audit trail.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newDemoCmd(),
		newServeCmd(),
		newConfigCmd(),
		newUsersCmd(),
		newCertsCmd(),
		newRevokeCmd(),
		newPolicyCmd(),
		newAuditCmd(),
	)
	return root
}

// exitError carries an exit code; its message has already been printed or
// is printed by exitCode.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exitCode prints err (if any) to stderr and maps it to the process exit code:
// 0 success, 1 failure (a check failed, an operation failed), 2 usage or a
// verb that is not available yet.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "sekisho:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "sekisho:", err)
	if isUsageError(err) {
		return 2
	}
	return 1
}

// notYet is the honest answer of a verb whose issue is not done yet.
func notYet(verb string) *cobra.Command {
	return &cobra.Command{
		Use:                verb,
		Short:              verb + " (未実装 / not implemented yet)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return &exitError{code: 2, err: fmt.Errorf("%s はまだ実装されていません (not implemented yet)", cmd.CommandPath())}
		},
	}
}
