package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/internal/app"
	"github.com/sekisho/sekisho/policy"
)

func newPolicyPushCmd() *cobra.Command {
	var configPath, by string
	cmd := &cobra.Command{
		Use:   "push --config F FILE",
		Short: "ポリシーを全レプリカに公開する (publish a policy to every replica)",
		Long: `PostgreSQL 構成で、ポリシーファイルを次の版として公開します。設定と照合して
検査し（誤りは file:line で示し、何も保存しません）、保存して全レプリカに通知
します。各レプリカは 1 秒以内に新しい版を使い始めます（docs/scale-out.md）。

With store.driver postgres, publishes FILE as the next policy version: it
is checked against the configuration first (file:line errors, nothing
stored), stored, and announced; every replica uses it within a second.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			text, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("reading policy %s: %w", args[0], err)
			}
			if by == "" {
				if u, err := user.Current(); err == nil {
					by = u.Username
				}
			}
			v, err := app.PushPolicy(cmd.Context(), cfg, filepath.Base(args[0]), text, by)
			if errors.Is(err, policy.ErrSamePolicy) {
				fmt.Fprintln(cmd.OutOrStdout(), "変更はありません（同じ内容の版が有効です） / unchanged: this text is the version in force")
				return nil
			}
			if err != nil && v == nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ポリシーの版 %d を公開しました / published policy version %d (sha256 %s)\n", v.Version, v.Version, v.SHA256[:12])
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
			}
			return nil
		},
	}
	addConfigFlag(cmd, &configPath)
	cmd.Flags().StringVar(&by, "by", "", "公開者（監査用）、既定は OS の利用者名 (publisher, for the audit trail)")
	return cmd
}
