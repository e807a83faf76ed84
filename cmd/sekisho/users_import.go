package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/directory"
)

// newUsersImportCmd is `sekisho users import`: staff changes from the
// personnel system's CSV export (人事異動).
func newUsersImportCmd() *cobra.Command {
	var (
		cfgPath, encoding string
		apply, full       bool
		force             bool
	)
	cmd := &cobra.Command{
		Use:   "import --config F FILE.csv [--apply] [--full]",
		Short: "人事異動の CSV を取り込む (import staff changes from a CSV file)",
		Long: `人事システムが出力した CSV (UTF-8 または Shift_JIS) を読み、利用者の追加・所属と
ロールの変更・無効化・有効化を計画して表示します。--apply を付けたときだけ反映します。
1行でも誤りがあれば何も反映しません。発令日が先の行は予約され、その日の 0 時
(日本時間) に稼働中のゲートウェイが反映します。--full は CSV に無い利用者を無効化
します (削除はしません)。

列 (見出し行が必要): 職員番号/id, 氏名/name, 所属/department, ロール/roles
(「;」か「|」区切り), 状態/status (有効/active, 無効/disabled), 発令日/effective
(省略可, 2027-04-01)。

Reads the personnel system's CSV export (UTF-8 or Shift_JIS) and shows
the plan: users to add, change (department, roles, name), disable and
enable. Only --apply applies it, all at once; a file with any bad row
applies nothing. Rows with a future effective date are scheduled and
applied at 00:00 Asia/Tokyo on that day by the running gateway. --full
disables users the file does not list (never deletes them).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			file := args[0]
			fi, err := os.Stat(file)
			if err != nil {
				return fmt.Errorf("取込ファイルを読めません (reading %s): %w", file, err)
			}
			if fi.Size() > directory.MaxCSVSize {
				return fmt.Errorf("取込ファイルが大きすぎます (%s is larger than %d MiB)", file, directory.MaxCSVSize>>20)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("取込ファイルを読めません (reading %s): %w", file, err)
			}
			roles, err := directory.KnownRoles(cfg)
			if err != nil {
				return err
			}
			loc, err := directory.Location(cfg)
			if err != nil {
				return err
			}
			src, err := directory.ParseCSV(file, data, directory.CSVOptions{Encoding: encoding, Roles: roles, Location: loc})
			if err != nil {
				return rowErrors(cmd.ErrOrStderr(), err)
			}
			src.Full = full
			return planAndApply(cmd, cfg, src, apply, force)
		},
	}
	addConfigFlag(cmd, &cfgPath)
	f := cmd.Flags()
	f.BoolVar(&apply, "apply", false, "計画を反映する (apply the plan; without it nothing changes)")
	f.BoolVar(&full, "full", false, "CSV に無い利用者を無効化する (disable users the file does not list)")
	f.StringVar(&encoding, "encoding", directory.EncodingAuto, "文字コード auto, utf8, sjis (file encoding)")
	f.BoolVar(&force, "force", false, "無効化の上限 (directory.max_disable) を超えても反映する (apply past the disable limit)")
	return cmd
}

// newUsersSyncCmd is `sekisho users sync`: the same from LDAP or Active
// Directory (directory.ldap in the configuration).
func newUsersSyncCmd() *cobra.Command {
	var (
		cfgPath      string
		apply, force bool
	)
	cmd := &cobra.Command{
		Use:   "sync --config F [--apply]",
		Short: "LDAP / Active Directory と同期する (sync staff from LDAP or Active Directory)",
		Long: `設定の directory.ldap に従い、LDAP または Active Directory から利用者・所属・
グループ (ロール) を読み、計画を表示します。--apply を付けたときだけ反映します。
ディレクトリに無い利用者は無効化します (削除はしません。directory.keep の利用者を除く)。
接続は LDAPS か StartTLS です。

Reads users, departments and group memberships (mapped to roles by
directory.ldap.groups) from LDAP or Active Directory and shows the plan;
--apply applies it. Users the directory no longer has are disabled
(never deleted), except those in directory.keep. The connection uses
LDAPS or StartTLS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			roles, err := directory.KnownRoles(cfg)
			if err != nil {
				return err
			}
			src, err := directory.ReadLDAP(cmd.Context(), cfg, roles)
			if err != nil {
				var re *directory.RowErrors
				if errors.As(err, &re) {
					return rowErrors(cmd.ErrOrStderr(), err)
				}
				return err
			}
			return planAndApply(cmd, cfg, src, apply, force)
		},
	}
	addConfigFlag(cmd, &cfgPath)
	f := cmd.Flags()
	f.BoolVar(&apply, "apply", false, "計画を反映する (apply the plan; without it nothing changes)")
	f.BoolVar(&force, "force", false, "無効化の上限 (directory.max_disable) を超えても反映する (apply past the disable limit)")
	return cmd
}

// rowErrors prints every problem of a source and fails with exit 1.
func rowErrors(w io.Writer, err error) error {
	fmt.Fprintln(w, "誤りがあるため何も反映していません (nothing was applied because of these errors):")
	fmt.Fprintln(w, err)
	return &exitError{code: 1}
}

// planAndApply prints the plan for src and, with apply, applies it with
// one audit record per change.
func planAndApply(cmd *cobra.Command, cfg *config.Config, src *directory.Source, apply, force bool) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	opts := append(directory.Options(cfg), directory.WithOperator(operator()))
	if force {
		opts = append(opts, directory.WithForce())
	}
	cs, err := directory.Plan(ctx, st, src, opts...)
	if err != nil {
		return err
	}
	if err := cs.Render(out); err != nil {
		return err
	}
	if !apply {
		if !cs.Empty() {
			fmt.Fprintln(out, "確認のみです。反映するには --apply を付けて実行してください (dry run: nothing changed; run again with --apply).")
		}
		return nil
	}
	if cs.Empty() {
		return nil
	}
	// The trail is opened first: without it nothing is applied. While a
	// gateway holds it, the records go to its spool and it drains them.
	trail, _, err := audit.OpenWriter(cfg.Audit)
	if err != nil {
		return fmt.Errorf("監査証跡を開けないため反映しません (opening the audit trail; nothing applied): %w", err)
	}
	res, applyErr := directory.Apply(ctx, st, cs, append(opts, directory.WithAudit(trail))...)
	if err := trail.Close(); err != nil && applyErr == nil {
		applyErr = fmt.Errorf("closing the audit trail: %w", err)
	}
	if res != nil {
		if err := res.Render(out); err != nil {
			return err
		}
	}
	return applyErr
}

// newUsersPendingCmd is `sekisho users pending`: the scheduled changes
// waiting for their effective date, and cancelling one.
func newUsersPendingCmd() *cobra.Command {
	var (
		cfgPath string
		cancel  int64
	)
	cmd := &cobra.Command{
		Use:   "pending --config F [--cancel N]",
		Short: "発令日待ちの予約を一覧・取消する (list or cancel scheduled changes)",
		Long: `発令日が先の行として取り込まれ、まだ反映されていない変更を一覧します。
--cancel N で予約 #N を取り消します (監査証跡に記録します)。

Lists the changes imported with a future effective date and not yet
applied; --cancel N removes scheduled change #N (audited).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			loc, err := directory.Location(cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := openStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			if cancel == 0 {
				list, err := directory.Pending(ctx, st)
				if err != nil {
					return err
				}
				return directory.RenderPending(cmd.OutOrStdout(), list, loc)
			}
			trail, _, err := audit.OpenWriter(cfg.Audit)
			if err != nil {
				return fmt.Errorf("監査証跡を開けないため取り消しません (opening the audit trail; nothing cancelled): %w", err)
			}
			p, cancelErr := directory.CancelPending(ctx, st, cancel, directory.WithAudit(trail), directory.WithOperator(operator()))
			if err := trail.Close(); err != nil && cancelErr == nil {
				cancelErr = fmt.Errorf("closing the audit trail: %w", err)
			}
			if p != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "予約 #%d (%s, 発令日 %s) を取り消しました (cancelled).\n", p.Seq, p.UserID, p.EffectiveAt.In(loc).Format("2006-01-02"))
			}
			return cancelErr
		},
	}
	addConfigFlag(cmd, &cfgPath)
	cmd.Flags().Int64Var(&cancel, "cancel", 0, "取り消す予約の番号 (number of the scheduled change to cancel)")
	return cmd
}
