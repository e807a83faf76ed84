package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "設定ファイルの検証 (configuration tools)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newConfigCheckCmd())
	return cmd
}

func newConfigCheckCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "設定ファイルを検証する (validate the configuration file)",
		Long: `設定ファイルを読み込んで検証します。誤りがあれば、ファイル名・行番号・キーと
その内容をすべて表示し、終了コード 1 で終了します。参照しているファイル
(証明書、CA、CRL、ポリシー) が存在することも確かめます。

Loads and validates the configuration file, and checks that the files it
names (certificates, CAs, CRL, policy) exist. Every mistake is printed with
its file, line and key, and the exit code is 1; a valid file exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), path)
		},
	}
	addConfigFlag(cmd, &path)
	return cmd
}

// checkPolicy is the hook where `config check` validates the policy the
// configuration names (policy.file, policy.model). It is nil until the
// policy package provides a check; set it in this file to a function that
// calls the policy package (e.g. policy.New(cfg)) and returns its error,
// which should carry file:line like config errors do.
var checkPolicy func(cfg *config.Config) error

func runConfigCheck(stdout, stderr io.Writer, path string) error {
	cfg, err := config.Load(path, config.CheckFiles())
	if err != nil {
		var errs *config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(stderr, "設定に誤りがあります (configuration errors):")
			for _, e := range errs.List {
				fmt.Fprintln(stderr, e)
			}
			return &exitError{code: 1}
		}
		return &exitError{code: 1, err: fmt.Errorf("設定ファイルを読み込めません: %w", err)}
	}
	if checkPolicy != nil {
		if err := checkPolicy(cfg); err != nil {
			fmt.Fprintln(stderr, "ポリシーに誤りがあります (policy errors):")
			fmt.Fprintln(stderr, err)
			return &exitError{code: 1}
		}
	} else {
		fmt.Fprintf(stderr, "注意: ポリシーファイル %s はまだ検証されません (note: the policy file is not checked yet)\n", cfg.Policy.File)
	}
	fmt.Fprintf(stdout, "設定は正しく読み込めました / configuration OK: %d routes, %d zones, %d classes\n",
		len(cfg.Routes), len(cfg.Zones), len(cfg.Classes))
	return nil
}
