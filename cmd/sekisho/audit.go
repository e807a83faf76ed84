package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/app"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "監査証跡の検証・検索・レポート (verify, query and report on the audit trail)",
		Long: `改ざん検知可能な監査証跡を検証し、検索し、監査用のレポートを作ります。
仕組みと独立した検証手順は docs/audit.md を参照。

Verify, query and report on the tamper-evident audit trail; see docs/audit.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditQueryCmd(), newAuditReportCmd(), newAuditKeyCmd(), newAuditAppendCmd())
	return cmd
}

// auditTarget is where the trail is: --dir, or the audit section of --config.
type auditTarget struct {
	dir, configPath string
	// pgDSN is set when --config names a PostgreSQL store: query and
	// verify then read the central table (docs/scale-out.md).
	pgDSN string
}

func (a *auditTarget) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.dir, "dir", "", "監査証跡のディレクトリ (audit trail directory)")
	addConfigFlag(cmd, &a.configPath)
}

// resolve returns the audit settings: from --dir when given, else from the
// configuration file.
func (a *auditTarget) resolve(cmd *cobra.Command) (config.Audit, error) {
	if a.dir != "" {
		return config.Audit{Dir: a.dir, Key: filepath.Join(a.dir, "audit.key")}, nil
	}
	cfg, err := loadConfig(a.configPath)
	if err != nil {
		if !cmd.Flags().Changed("config") {
			return config.Audit{}, &exitError{code: 2, err: fmt.Errorf("--dir か --config を指定してください (give --dir or --config): %w", err)}
		}
		return config.Audit{}, err
	}
	ac := cfg.Audit
	if app.Clustered(cfg) {
		a.pgDSN = cfg.Store.DSN
		for _, s := range cfg.Audit.Sinks {
			if s.Type == "postgres" && s.DSN != "" {
				a.pgDSN = s.DSN
			}
		}
	}
	if ac.Dir == "" {
		ac.Dir = audit.DefaultDir
	}
	if ac.Key == "" {
		ac.Key = filepath.Join(ac.Dir, "audit.key")
	}
	return ac, nil
}

func newAuditVerifyCmd() *cobra.Command {
	var target auditTarget
	var keyPath string
	cmd := &cobra.Command{
		Use:   "verify (--dir D | --config F) [--key PUB]",
		Short: "ハッシュ連鎖とチェックポイント署名を検証する (check the hash chain and checkpoint signatures)",
		Long: `すべての記録のハッシュ、連鎖、チェックポイントの署名を検証します。改ざん・欠落・
挿入・並べ替え・末尾の切り詰めがなければ終了コード 0、あれば最初の不正な記録
（ファイル、行、seq、理由）を示して終了コード 1 を返します。

--key には事前に書き出した公開鍵（sekisho audit key の JWKS、または PEM）を指定して
ください。省略すると証跡と同じ場所の鍵を使いますが、その鍵ごと差し替えられた
場合は検出できません。

Checks every record's hash, the chain and the checkpoint signatures. Exit 0
when intact; otherwise exit 1 naming the first bad record (file, line, seq,
why). Pass --key with the public key exported earlier (JWKS or PEM); without
it the key stored beside the trail is used, which cannot catch a trail
re-signed with a replaced key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := target.resolve(cmd)
			if err != nil {
				return err
			}
			var keys jwk.Set
			if keyPath != "" {
				keys, err = audit.LoadPublicKeys(keyPath)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "注意: 証跡と同じ場所の鍵 %s で検証します。独立した検証には --key で公開鍵を指定してください。\nnote: verifying with the key beside the trail; pass --key for an independent check.\n", ac.Key)
				keys, err = audit.LoadPublicKeys(ac.Key)
			}
			if err != nil {
				return err
			}
			if target.pgDSN != "" {
				return verifyCentral(cmd, target.pgDSN, keys)
			}
			start := time.Now()
			res, err := audit.Verify(ac.Dir, keys)
			if err != nil {
				return err
			}
			if !res.OK() {
				p := res.Problem
				return &exitError{code: 1, err: fmt.Errorf("監査証跡の改ざんまたは破損を検出しました (audit trail is not intact)\n  ファイル / file: %s\n  行 / line: %d\n  seq: %d\n  理由: %s\n  reason: %s",
					filepath.Join(ac.Dir, p.File), p.Line, p.Seq, p.Reason, p.ReasonEN)}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "監査証跡は完全です (audit trail intact): %s\n", ac.Dir)
			fmt.Fprintf(out, "  記録 / records: %d (seq %d–%d), ファイル / files: %d, 検証時間 / took: %s\n", res.Records, res.FirstSeq, res.LastSeq, res.Files, time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(out, "  チェックポイント / checkpoints: %d (最新 / last seq %d)\n", res.Checkpoints, res.LastCheckpointSeq)
			if res.Closed {
				fmt.Fprintf(out, "  正常に閉じられています (closed cleanly: ends with a final checkpoint)\n")
			} else {
				fmt.Fprintf(out, "  未封印の末尾 / records after the last checkpoint: %d（稼働中またはクラッシュ後 / trail open or crashed）\n", res.Unsealed)
			}
			for _, tn := range res.Torn {
				fmt.Fprintf(out, "  クラッシュで途切れた書き込みを封印済み / sealed torn write: %s offset %d, %d bytes (seq %d)\n", tn.File, tn.Offset, tn.Length, tn.SealedBy)
			}
			if res.PartialTail > 0 {
				fmt.Fprintf(out, "  末尾に書きかけの行があります（%d バイト。稼働中またはクラッシュ直後で、次に開くと封印されます）\n  unterminated fragment at the end (%d bytes): a write in progress or a crash; sealed at the next open\n", res.PartialTail, res.PartialTail)
			}
			if res.RetainedFrom > 0 {
				fmt.Fprintf(out, "  保存期間により seq %d より前は削除済み / records before seq %d removed by retention\n", res.RetainedFrom, res.RetainedFrom)
			}
			return nil
		},
	}
	target.flags(cmd)
	cmd.Flags().StringVar(&keyPath, "key", "", "検証用の公開鍵 JWKS または PEM (public key: JWKS or PEM)")
	return cmd
}

// timeFlags are --since, --until and --tz.
type timeFlags struct {
	since, until, tz string
}

func (tf *timeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&tf.since, "since", "", "開始日時 RFC 3339 または 2006-01-02 (from, inclusive)")
	cmd.Flags().StringVar(&tf.until, "until", "", "終了日時 RFC 3339（含まない）または 2006-01-02（その日を含む）(until: RFC 3339 exclusive, or a date, inclusive)")
	cmd.Flags().StringVar(&tf.tz, "tz", "Asia/Tokyo", "日付と表示のタイムゾーン (time zone for dates and display)")
}

func (tf *timeFlags) location() (*time.Location, error) {
	if tf.tz == "Asia/Tokyo" || tf.tz == "JST" {
		return audit.JST, nil // no daylight saving; no tzdata needed
	}
	loc, err := time.LoadLocation(tf.tz)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("--tz %q: %w", tf.tz, err)}
	}
	return loc, nil
}

// parse returns the period; a date-only --until includes that whole day.
func (tf *timeFlags) parse(loc *time.Location) (since, until time.Time, err error) {
	if since, _, err = parseWhen("--since", tf.since, loc); err != nil {
		return
	}
	var dateOnly bool
	if until, dateOnly, err = parseWhen("--until", tf.until, loc); err != nil {
		return
	}
	if dateOnly {
		until = until.AddDate(0, 0, 1)
	}
	return
}

func parseWhen(flag, s string, loc *time.Location) (time.Time, bool, error) {
	if s == "" {
		return time.Time{}, false, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, false, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, true, nil
	}
	return time.Time{}, false, &exitError{code: 2, err: fmt.Errorf("%s %q: RFC 3339（2026-11-23T09:00:00+09:00）か日付（2026-11-23）で指定してください (want RFC 3339 or YYYY-MM-DD)", flag, s)}
}

func newAuditQueryCmd() *cobra.Command {
	var target auditTarget
	var tf timeFlags
	var f audit.Filter
	var enforced, format string
	cmd := &cobra.Command{
		Use:   "query (--dir D | --config F) [--user U --device D --route R --class C --zone Z --decision X --enforced true|false --event E --request-id ID --since T --until T] [--format table|json|csv] [--limit N]",
		Short: "監査記録を検索する (search audit records)",
		Long: `条件に合う監査記録を古い順に表示します。検証はしません（verify を使ってください）。
--format csv は Excel で日本語が正しく開けるよう BOM 付き UTF-8 で出力します。
--format json は保存されているとおりの行（JSON Lines）を出力します。

Prints matching records, oldest first, without verifying them. csv is UTF-8
with a BOM (Excel); json prints the stored lines (JSON Lines).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := target.resolve(cmd)
			if err != nil {
				return err
			}
			loc, err := tf.location()
			if err != nil {
				return err
			}
			if f.Since, f.Until, err = tf.parse(loc); err != nil {
				return err
			}
			if enforced != "" {
				v, err := strconv.ParseBool(enforced)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--enforced %q: true か false (want true or false)", enforced)}
				}
				f.Enforced = &v
			}
			recs := audit.Query(ac.Dir, f)
			if target.pgDSN != "" {
				pool, err := audit.ConnectPostgres(cmd.Context(), target.pgDSN)
				if err != nil {
					return err
				}
				defer pool.Close()
				recs = audit.QueryPostgres(cmd.Context(), pool, f)
			}
			return writeQuery(cmd.OutOrStdout(), cmd.ErrOrStderr(), recs, f, format, loc)
		},
	}
	target.flags(cmd)
	tf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.User, "user", "", "利用者 ID (user id)")
	fl.StringVar(&f.Device, "device", "", "端末 ID (device id)")
	fl.StringVar(&f.Route, "route", "", "ルート名 (route name)")
	fl.StringVar(&f.Class, "class", "", "機密性分類 3A/3B/3C/2/1 (asset class)")
	fl.StringVar(&f.Zone, "zone", "", "接続元ゾーン (source zone)")
	fl.StringVar(&f.Decision, "decision", "", "allow, deny, stepup, error")
	fl.StringVar(&enforced, "enforced", "", "true: 強制 (enforced), false: シャドーモード (shadow mode)")
	fl.StringVar(&f.Event, "event", "", "access, authn, admin, system, alert, checkpoint")
	fl.StringVar(&f.RequestID, "request-id", "", "要求 ID (request id)")
	fl.StringVar(&format, "format", "table", "table, json, csv")
	fl.IntVar(&f.Limit, "limit", 0, "最大件数、0 は無制限 (at most N records; 0: all)")
	return cmd
}

func writeQuery(stdout, stderr io.Writer, recs iter.Seq2[*audit.Record, error], f audit.Filter, format string, loc *time.Location) error {
	bw := bufio.NewWriterSize(stdout, 64<<10)
	defer bw.Flush()
	var emit func(*audit.Record) error
	var done func() error
	switch format {
	case "json":
		emit = func(r *audit.Record) error {
			b, _ := r.MarshalJSON()
			bw.Write(b)
			return bw.WriteByte('\n')
		}
		done = func() error { return nil }
	case "csv":
		cw, err := audit.NewCSVWriter(bw)
		if err != nil {
			return err
		}
		if err := cw.Write(audit.RecordColumns); err != nil {
			return err
		}
		emit = func(r *audit.Record) error { return cw.Write(audit.RecordRow(r, loc)) }
		done = func() error { cw.Flush(); return cw.Error() }
	case "table", "":
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "日時 TIME\tSEQ\tEVENT\t利用者 USER\t端末 DEVICE\tZONE\tROUTE\tCLASS\t要求 REQUEST\t判定 DECISION\tSTATUS\t理由 REASONS\tREQUEST_ID")
		rows := 0
		emit = func(r *audit.Record) error {
			// tabwriter keeps everything until Flush: align in blocks so a
			// large query streams.
			if rows++; rows%1000 == 0 {
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			what := strings.TrimSpace(r.Method + " " + r.Path)
			if r.Event != audit.EventAccess {
				what = r.Action
			}
			decision := r.Decision
			if decision != "" && !r.Enforced {
				decision += "(shadow)"
			}
			_, err := fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n",
				r.Time.In(loc).Format("2006-01-02 15:04:05"), r.Seq, r.Event, cell(r.User), cell(r.Device), cell(r.Zone),
				cell(r.Route), cell(r.Class), cell(what), cell(decision), r.Status, cell(strings.Join(r.Reasons, ",")), cell(r.RequestID))
			return err
		}
		done = tw.Flush
	default:
		return &exitError{code: 2, err: fmt.Errorf("--format %q: table, json, csv のいずれか (want table, json or csv)", format)}
	}
	unreadable := 0
	for r, err := range recs {
		var le *audit.LineError
		if errors.As(err, &le) {
			unreadable++
			continue
		}
		if err != nil {
			return err
		}
		if err := emit(r); err != nil {
			return fmt.Errorf("writing query output: %w", err)
		}
	}
	if err := done(); err != nil {
		return fmt.Errorf("writing query output: %w", err)
	}
	if unreadable > 0 {
		fmt.Fprintf(stderr, "注意: 記録として読めない行が %d 行あります。sekisho audit verify で確認してください。\nnote: %d lines are not records; run sekisho audit verify.\n", unreadable, unreadable)
	}
	return nil
}

// cell keeps a table cell on one line.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

func newAuditReportCmd() *cobra.Command {
	var target auditTarget
	var tf timeFlags
	var opts audit.ReportOptions
	var format, office, out string
	var holidays []string
	cmd := &cobra.Command{
		Use:   "report (--dir D | --config F) --since T --until T [--format md|html|csv] [--user U | --device D] [--office-hours 08:30-18:15] [--holidays DATES|@FILE]",
		Short: "監査用の集計レポートを作る (the summary an auditor files)",
		Long: `期間内の判定を機密性分類・接続元ゾーン・時間帯ごとに集計し、拒否とその理由、
シャドーモードで拒否となる要求、勤務時間外（既定 平日 08:30–18:15 JST）の 3A/3B
へのアクセス、失効端末・無効化利用者による試行を一覧にします。--user か --device を
指定するとその時系列も出力します。要求は request_id ごとに 1 件と数えます。
「パスキー未登録の職員」は利用者ストアを読むため --config のときだけ集計します。

Summarises decisions by class, zone and hour; denials and reasons; shadow-mode
would-denies per route; off-hours access to 3A/3B (default weekdays
08:30–18:15 JST); revoked devices and disabled users that still tried; with
--user or --device an incident timeline. Requests are counted by request_id.
"Staff without a passkey" reads the user store, so it is computed with
--config only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := target.resolve(cmd)
			if err != nil {
				return err
			}
			loc, err := tf.location()
			if err != nil {
				return err
			}
			if opts.Since, opts.Until, err = tf.parse(loc); err != nil {
				return err
			}
			if opts.Since.IsZero() || opts.Until.IsZero() {
				return &exitError{code: 2, err: errors.New("--since と --until を指定してください (--since and --until are required)")}
			}
			if opts.User != "" && opts.Device != "" {
				return &exitError{code: 2, err: errors.New("--user と --device はどちらか一方です (give --user or --device, not both)")}
			}
			oh, err := parseOfficeHours(office, loc)
			if err != nil {
				return err
			}
			if oh.Holidays, err = parseHolidays(holidays); err != nil {
				return err
			}
			opts.OfficeHours = oh
			rep, err := audit.BuildReport(ac.Dir, opts)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if target.dir == "" {
				// The share of staff with phishing-resistant MFA, a KPI
				// cities report: active users with no passkey.
				ids, err := staffWithoutPasskey(cmd.Context(), target.configPath)
				if err != nil {
					return err
				}
				rep.SetStaffWithoutPasskey(ids)
			}
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return fmt.Errorf("creating report file: %w", err)
				}
				defer f.Close()
				w = f
			}
			switch format {
			case "md", "markdown", "":
				err = rep.WriteMarkdown(w)
			case "html":
				err = rep.WriteHTML(w)
			case "csv":
				err = rep.WriteCSV(w)
			default:
				return &exitError{code: 2, err: fmt.Errorf("--format %q: md, html, csv のいずれか (want md, html or csv)", format)}
			}
			if err != nil {
				return fmt.Errorf("writing report: %w", err)
			}
			if rep.Unreadable > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "注意: 記録として読めない行が %d 行あります (%d unreadable lines; run verify)\n", rep.Unreadable, rep.Unreadable)
			}
			return nil
		},
	}
	target.flags(cmd)
	tf.add(cmd)
	cmd.Flags().StringVar(&format, "format", "md", "md, html, csv")
	cmd.Flags().StringVar(&opts.User, "user", "", "この利用者に絞り時系列を出す (one user, with a timeline)")
	cmd.Flags().StringVar(&opts.Device, "device", "", "この端末に絞り時系列を出す (one device, with a timeline)")
	cmd.Flags().StringVar(&office, "office-hours", "08:30-18:15", "勤務時間 HH:MM-HH:MM（平日、--tz の時刻）(office hours on weekdays, in --tz)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "出力ファイル（省略時は標準出力）(output file; default stdout)")
	cmd.Flags().StringSliceVar(&holidays, "holidays", nil, "休日（祝日・年末年始）YYYY-MM-DD をカンマ区切り、または @ファイル（1 行 1 日）(days off: dates, or @file with one per line)")
	return cmd
}

// parseHolidays reads dates given inline or, with @, from a file (one per
// line; # starts a comment, so a 内閣府 holiday list can be pasted in).
func parseHolidays(args []string) (map[string]bool, error) {
	if len(args) == 0 {
		return nil, nil
	}
	days := map[string]bool{}
	add := func(src, v string) error {
		v = strings.TrimSpace(v)
		if i := strings.IndexByte(v, '#'); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		if v == "" {
			return nil
		}
		d := strings.ReplaceAll(v, "/", "-")
		if _, err := time.Parse("2006-01-02", d); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--holidays %s: %q は日付 YYYY-MM-DD ではありません (not a date)", src, v)}
		}
		days[d] = true
		return nil
	}
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "@"); ok {
			data, err := os.ReadFile(name)
			if err != nil {
				return nil, &exitError{code: 2, err: fmt.Errorf("--holidays: %w", err)}
			}
			for i, line := range strings.Split(string(data), "\n") {
				if err := add(fmt.Sprintf("%s:%d", name, i+1), line); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(a, a); err != nil {
			return nil, err
		}
	}
	return days, nil
}

func parseOfficeHours(s string, loc *time.Location) (audit.OfficeHours, error) {
	bad := &exitError{code: 2, err: fmt.Errorf("--office-hours %q: HH:MM-HH:MM で指定してください (want HH:MM-HH:MM)", s)}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return audit.OfficeHours{}, bad
	}
	clock := func(v string) (time.Duration, bool) {
		t, err := time.Parse("15:04", strings.TrimSpace(v))
		if err != nil {
			return 0, false
		}
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, true
	}
	start, ok1 := clock(a)
	end, ok2 := clock(b)
	if !ok1 || !ok2 || end <= start {
		return audit.OfficeHours{}, bad
	}
	return audit.OfficeHours{Start: start, End: end, Location: loc}, nil
}

func newAuditKeyCmd() *cobra.Command {
	var target auditTarget
	var rotate, create bool
	cmd := &cobra.Command{
		Use:   "key (--dir D | --config F) [--create] [--rotate]",
		Short: "チェックポイント検証用の公開鍵 (JWKS) を出力する (print the checkpoint public key as JWKS)",
		Long: `監査鍵の公開鍵を JWKS で出力します。証跡とは別の場所（監査担当の手元、
別サーバ）に保管し、verify --key に指定してください。

--create は鍵がまだなければ作ります（複数レプリカで共有する鍵を、ゲートウェイを
起動する前に作るとき）。--rotate は新しい鍵に交換します。古い公開鍵は audit.key.<kid>.pub として残り、
JWKS に含まれるので、以前のチェックポイントも検証できます。稼働中のゲートウェイは
再起動するまで古い鍵で署名します。

Prints the audit key's public JWKS. Keep it away from the trail (with the
auditors) and pass it to verify --key. --create makes the key when there
is none yet (a key shared by replicas, made before any gateway starts).
--rotate replaces the key; the old
public key stays as audit.key.<kid>.pub and in the JWKS, so older
checkpoints still verify. A running gateway signs with the old key until it
restarts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := target.resolve(cmd)
			if err != nil {
				return err
			}
			if create {
				created, err := audit.CreateKey(ac.Key)
				if err != nil {
					return err
				}
				if created {
					fmt.Fprintf(cmd.ErrOrStderr(), "監査鍵を作成しました (created the audit key): %s\n", ac.Key)
				}
			}
			if rotate {
				kid, err := audit.RotateKey(ac.Key)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "監査鍵を交換しました (audit key rotated): kid %s\nゲートウェイを再起動すると新しい鍵で署名します。下の JWKS を保管し直してください。\nRestart the gateway to sign with it; store the JWKS below again.\n", kid)
			}
			b, err := audit.PublicJWKS(ac.Key)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return err
		},
	}
	target.flags(cmd)
	cmd.Flags().BoolVar(&rotate, "rotate", false, "監査鍵を新しい鍵に交換する (replace the audit key)")
	cmd.Flags().BoolVar(&create, "create", false, "鍵がなければ作る (make the key if there is none)")
	return cmd
}

// newAuditAppendCmd appends records given as JSON lines on stdin. It is for
// importing events recorded elsewhere and for tests; the trail assigns seq,
// prev and hash (and time when missing).
func newAuditAppendCmd() *cobra.Command {
	var target auditTarget
	cmd := &cobra.Command{
		Use:    "append (--dir D | --config F) < records.jsonl",
		Short:  "標準入力の JSON 行を記録として追記する (append JSON lines from stdin as records)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := target.resolve(cmd)
			if err != nil {
				return err
			}
			tr, err := audit.Open(ac)
			if err != nil {
				return err
			}
			dec := json.NewDecoder(cmd.InOrStdin())
			n := 0
			for {
				var r audit.Record
				if err := dec.Decode(&r); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					tr.Close()
					return fmt.Errorf("reading record %d: %w", n+1, err)
				}
				r.Seq, r.Prev, r.Hash = 0, "", ""
				if err := tr.AppendDurable(cmd.Context(), &r); err != nil {
					tr.Close()
					return err
				}
				n++
			}
			if err := tr.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d 件を追記しました (appended %d records)\n", n, n)
			return nil
		},
	}
	target.flags(cmd)
	return cmd
}

// verifyCentral verifies every replica's chain in the central audit table.
func verifyCentral(cmd *cobra.Command, dsn string, keys jwk.Set) error {
	pool, err := audit.ConnectPostgres(cmd.Context(), dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := audit.VerifyPostgres(cmd.Context(), pool, keys)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return &exitError{code: 1, err: errors.New("中央の監査表に記録がありません (the central audit table holds no record)")}
	}
	out := cmd.OutOrStdout()
	bad := 0
	for _, r := range res {
		if p := r.Problem; p != nil {
			bad++
			fmt.Fprintf(cmd.ErrOrStderr(), "レプリカ %s: 改ざんまたは欠落を検出 (not intact): seq %d: %s (%s)\n", r.Replica, p.Seq, p.Reason, p.ReasonEN)
			continue
		}
		fmt.Fprintf(out, "レプリカ %s: 完全です (intact): 記録 / records %d (seq %d–%d), チェックポイント / checkpoints %d\n", r.Replica, r.Records, r.FirstSeq, r.LastSeq, r.Checkpoints)
	}
	if bad > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d 件のレプリカの証跡が完全ではありません (%d replicas' trails are not intact)", bad, bad)}
	}
	return nil
}

// staffWithoutPasskey lists the active users that have no passkey.
func staffWithoutPasskey(ctx context.Context, cfgPath string) ([]string, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	users, err := st.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	sums, err := st.CredentialSummaries(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing passkeys: %w", err)
	}
	ids := []string{}
	for _, u := range users {
		if !u.Disabled && sums[u.ID].Count == 0 {
			ids = append(ids, u.ID)
		}
	}
	return ids, nil
}
