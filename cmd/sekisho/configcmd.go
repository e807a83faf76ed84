package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
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
(証明書、CA、CRL) が存在することと、ポリシーファイルの内容も確かめます。

Loads and validates the configuration file, checks that the files it names
(certificates, CAs, CRL) exist, and checks the policy file with the policy
engine. Every mistake is printed with its file, line and key, and the exit
code is 1; a valid file exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), path)
		},
	}
	addConfigFlag(cmd, &path)
	return cmd
}

// checkPolicy validates the policy the configuration names (policy.file,
// policy.model, policy.conditions…) with the same engine the gateway runs.
// It is the one place `config check` calls into the policy package; a
// variable so that a test could replace it.
var checkPolicy = func(cfg *config.Config) error {
	_, err := policy.New(cfg, policy.WithLogger(quietLogger()))
	return err
}

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
	if err := checkPolicy(cfg); err != nil {
		fmt.Fprintln(stderr, "ポリシーに誤りがあります (policy errors):")
		fmt.Fprintln(stderr, err)
		return &exitError{code: 1}
	}
	fmt.Fprintf(stdout, "設定は正しく読み込めました / configuration OK: %d routes, %d zones, %d classes\n",
		len(cfg.Routes), len(cfg.Zones), len(cfg.Classes))
	return nil
}
