package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/store"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "ポリシーの作成・説明・試験 (policy tools: init, explain, test)",
		Long: `情報資産の分類ごとのアクセス制御ポリシーを扱います。書式は docs/policy.md を参照。

Tools for the per-asset-class access policy; see docs/policy.md for the format.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newPolicyInitCmd(), newPolicyExplainCmd(), newPolicyTestCmd(), newPolicyPushCmd())
	return cmd
}

func newPolicyInitCmd() *cobra.Command {
	var profile, out, cases string
	var force bool
	cmd := &cobra.Command{
		Use:   "init --profile alpha|alpha-prime|beta|beta-prime [--out F] [--cases F]",
		Short: "ネットワークモデル別のポリシーひな形を書き出す (write a commented policy for a network model)",
		Long: `総務省ガイドラインのネットワークモデル（α, α′, β, β′）に合わせた、コメント付きの
ポリシーを書き出します。--out を省略すると標準出力へ。--cases でそのプロファイルの
試験ケース（sekisho policy test 用）も書き出します。既存のファイルは --force なしでは
上書きしません。

Writes a commented policy for a network model (alpha, alpha-prime, beta,
beta-prime) to --out or stdout, and with --cases its test cases. Existing
files are not overwritten without --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := policy.Profile(profile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(text)
			} else {
				err = writeNew(out, text, force)
			}
			if err != nil {
				return err
			}
			if cases != "" {
				c, err := policy.ProfileCases(profile)
				if err != nil {
					return err
				}
				if err := writeNew(cases, c, force); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "alpha, alpha-prime, beta, beta-prime")
	cmd.Flags().StringVarP(&out, "out", "o", "", "書き出すファイル（省略時は標準出力）(output file; default stdout)")
	cmd.Flags().StringVar(&cases, "cases", "", "試験ケースも書き出す (also write the profile's cases file)")
	cmd.Flags().BoolVar(&force, "force", false, "既存のファイルを上書きする (overwrite existing files)")
	_ = cmd.MarkFlagRequired("profile")
	return cmd
}

func writeNew(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s は既にあります。上書きするには --force (file exists; use --force to overwrite)", path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// explainFlags are the request that "policy explain" decides.
type explainFlags struct {
	configPath                     string
	user, route, method, path      string
	ip, zone                       string
	amr                            []string
	device, deviceOwner, deviceDpt string
	deviceRegistered               bool
	authAge                        time.Duration
	at                             string
	roles                          []string
	department                     string
	anonymous, jsonOut             bool
}

func newPolicyExplainCmd() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain --config F --user U --route R [--method M --path P --ip A --amr … --device D --auth-age DUR --time T] [--json]",
		Short: "ある要求の判定と理由を説明する (explain the decision for one request)",
		Long: `利用者・ルート・接続元などを指定して、ゲートウェイと同じエンジンで判定し、
判定・決め手の規則・理由・照合した規則・判定を変えるには何が必要かを表示します。
ロールと所属は --roles/--department で指定するか、省略時はストアから読みます。
端末の登録状況も --device を指定するとストアから読みます（--device-registered で上書き）。

Decides one request with the gateway's engine and shows the decision, the
deciding rule, the reasons, the rules that matched and what would change
the outcome. Roles and department come from --roles/--department, or from
the store when both are omitted; a --device is looked up in the store too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyExplain(cmd, &f)
		},
	}
	fl := cmd.Flags()
	addConfigFlag(cmd, &f.configPath)
	fl.StringVar(&f.user, "user", "", "利用者ID (user id)")
	fl.StringVar(&f.route, "route", "", "ルート名 (route name)")
	fl.StringVar(&f.method, "method", "GET", "HTTP メソッド (method)")
	fl.StringVar(&f.path, "path", "/", "パス (path)")
	fl.StringVar(&f.ip, "ip", "", "接続元 IP（設定の zones でゾーンを決める）(source address)")
	fl.StringVar(&f.zone, "zone", "", "接続元ゾーン（--ip の代わり）(source zone instead of --ip)")
	fl.StringSliceVar(&f.amr, "amr", []string{"hwk", "uv"}, "認証方式 hwk,user,uv,mtls (authentication methods)")
	fl.StringVar(&f.device, "device", "", "端末ID（有効な端末証明書あり）(device id with a valid certificate)")
	fl.BoolVar(&f.deviceRegistered, "device-registered", true, "端末が台帳で有効 (device active in the registry)")
	fl.StringVar(&f.deviceOwner, "device-owner", "", "端末の利用者（省略時は本人）(device owner; default the user)")
	fl.StringVar(&f.deviceDpt, "device-department", "", "端末の所属 (device department)")
	fl.DurationVar(&f.authAge, "auth-age", 0, "認証からの経過時間 (time since authentication), e.g. 20m")
	fl.StringVar(&f.at, "time", "", "要求の時刻 RFC 3339（省略時は現在）(request time; default now)")
	fl.StringSliceVar(&f.roles, "roles", nil, "ロール（ストアの代わり）(roles instead of the store)")
	fl.StringVar(&f.department, "department", "", "所属（ストアの代わり）(department instead of the store)")
	fl.BoolVar(&f.anonymous, "anonymous", false, "ログインしていない要求 (no session)")
	fl.BoolVar(&f.jsonOut, "json", false, "JSON で出力 (JSON output)")
	_ = cmd.MarkFlagRequired("route")
	return cmd
}

func runPolicyExplain(cmd *cobra.Command, f *explainFlags) error {
	if f.user == "" && !f.anonymous {
		return &exitError{code: 2, err: errors.New("--user か --anonymous が必要です (--user or --anonymous is required)")}
	}
	cfg, err := loadConfig(f.configPath)
	if err != nil {
		return err
	}
	now := time.Now()
	if f.at != "" {
		if now, err = time.Parse(time.RFC3339, f.at); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--time %q は RFC 3339 で指定します (e.g. 2026-04-01T10:00:00+09:00): %w", f.at, err)}
		}
	}
	// The engine's clock is the request time, so the output (including
	// the policy version's load time) depends only on the flags.
	eng, err := policy.New(cfg, policy.WithLogger(quietLogger()), policy.WithClock(func() time.Time { return now }))
	if err != nil {
		return err
	}
	t, err := policy.Resolve(cfg, f.route, f.method, f.path)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	req := &policy.Request{
		User: f.user, Roles: f.roles, Department: f.department, Authenticated: !f.anonymous,
		Route: t.Route, Class: t.Class, Segment: t.Segment, Action: t.Action, Mode: t.Mode,
		Zone: f.zone, Time: now, Method: strings.ToUpper(f.method), Path: f.path,
		Device: f.device, DeviceDepartment: f.deviceDpt,
	}
	if req.Authenticated {
		// --amr "" means a session with no recorded method.
		for _, m := range f.amr {
			if m = strings.TrimSpace(m); m != "" {
				req.AMR = append(req.AMR, m)
			}
		}
		req.AuthTime = now.Add(-f.authAge)
	}
	if f.ip != "" {
		ip, err := netip.ParseAddr(f.ip)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--ip %q: %w", f.ip, err)}
		}
		z := policy.ZoneOf(cfg, ip)
		if f.zone != "" && f.zone != z {
			return &exitError{code: 2, err: fmt.Errorf("--ip %s はゾーン %s です（--zone %s と矛盾）(ip is in zone %s)", f.ip, z, f.zone, z)}
		}
		req.Zone = z
	}
	if req.Zone == "" {
		req.Zone = "external"
	}
	if f.device != "" {
		req.DeviceRegistered = f.deviceRegistered
		req.DeviceOwner = f.deviceOwner
		if req.DeviceOwner == "" {
			req.DeviceOwner = f.user
		}
	}
	var notes []string
	fromStore := req.Authenticated && !cmd.Flags().Changed("roles") && !cmd.Flags().Changed("department")
	deviceFromStore := f.device != "" && !cmd.Flags().Changed("device-registered") && !cmd.Flags().Changed("device-owner")
	if fromStore || deviceFromStore {
		notes = append(notes, lookupStore(cmd.Context(), cfg, req, fromStore, deviceFromStore)...)
	}

	x := eng.Explain(req)
	if f.jsonOut {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			Request     *policy.Request    `json:"request"`
			Notes       []string           `json:"notes,omitempty"`
			Explanation policy.Explanation `json:"explanation"`
		}{req, notes, x})
	}
	printExplanation(cmd.OutOrStdout(), req, notes, &x)
	return nil
}

// lookupStore fills roles, department and device facts from the store.
// A store that cannot be opened is a note, not a failure: explain works
// from flags alone.
func lookupStore(ctx context.Context, cfg *config.Config, req *policy.Request, user, device bool) []string {
	if ctx == nil {
		ctx = context.Background()
	}
	if cfg.Store.Driver == "sqlite" && !strings.HasPrefix(cfg.Store.DSN, "file:") {
		// Explain must not create an empty database as a side effect.
		if _, err := os.Stat(cfg.Store.DSN); err != nil {
			name := cfg.Store.DSN
			if dir, err := filepath.Abs(filepath.Dir(cfg.Path)); err == nil {
				if rel, err := filepath.Rel(dir, name); err == nil {
					name = rel
				}
			}
			return []string{fmt.Sprintf("ストア %s がないため、ロール・所属・端末台帳は使っていません (store not found; roles, department and device registry not used)", name)}
		}
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return []string{fmt.Sprintf("ストアを開けないため、ロール・所属・端末台帳は使っていません (store not available: %v)", err)}
	}
	defer st.Close()
	var notes []string
	if user {
		u, err := st.GetUser(ctx, req.User)
		switch {
		case errors.Is(err, store.ErrNotFound):
			notes = append(notes, fmt.Sprintf("利用者 %s はストアにありません (user not in the store)", req.User))
		case err != nil:
			notes = append(notes, fmt.Sprintf("利用者を読めません (reading user: %v)", err))
		default:
			req.Roles, req.Department = u.Roles, u.Department
			if u.Disabled {
				notes = append(notes, fmt.Sprintf("利用者 %s は無効化されています。ゲートウェイはログインさせません (user is disabled)", req.User))
			}
		}
	}
	if device {
		d, err := st.GetDevice(ctx, req.Device)
		switch {
		case errors.Is(err, store.ErrNotFound):
			req.DeviceRegistered = false
			notes = append(notes, fmt.Sprintf("端末 %s は台帳にありません (device not in the registry)", req.Device))
		case err != nil:
			notes = append(notes, fmt.Sprintf("端末を読めません (reading device: %v)", err))
		default:
			req.DeviceRegistered = d.Status == store.DeviceActive
			req.DeviceOwner, req.DeviceDepartment = d.Owner, d.Department
		}
	}
	return notes
}

var effectJA = map[policy.Effect]string{policy.Allow: "許可", policy.Deny: "拒否", policy.StepUp: "再認証が必要"}

func yesNo(b bool) string {
	if b {
		return "はい (yes)"
	}
	return "いいえ (no)"
}

func printExplanation(w io.Writer, req *policy.Request, notes []string, x *policy.Explanation) {
	d := x.Decision
	fmt.Fprintf(w, "判定 (decision): %s (%s)\n", effectJA[d.Effect], d.Effect)
	fmt.Fprintf(w, "規則 (rule):     %s\n", d.Rule)
	if len(d.Reasons) > 0 {
		fmt.Fprintln(w, "理由 (reasons):")
		for _, r := range d.Reasons {
			fmt.Fprintf(w, "  - %s [%s]\n    %s\n", r.Message("ja"), r, r.Message("en"))
		}
	}
	fmt.Fprintf(w, "強制 (enforced): %s   監査の同期書き込み (audit sync): %s\n", yesNo(d.Enforced), yesNo(d.AuditSync))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "要求 (request):")
	who := req.User
	if !req.Authenticated {
		who = "(未ログイン anonymous)"
	}
	fmt.Fprintf(w, "  利用者 user=%s roles=[%s] department=%s\n", who, strings.Join(req.Roles, " "), req.Department)
	fmt.Fprintf(w, "  対象 route=%s class=%s segment=%s action=%s mode=%s (%s %s)\n", req.Route, req.Class, req.Segment, req.Action, req.Mode, req.Method, req.Path)
	dev := "なし (none)"
	if req.Device != "" {
		dev = fmt.Sprintf("%s registered=%t owner=%s", req.Device, req.DeviceRegistered, req.DeviceOwner)
	}
	age := "-"
	if !req.AuthTime.IsZero() {
		age = req.Time.Sub(req.AuthTime).String()
	}
	fmt.Fprintf(w, "  接続 zone=%s amr=[%s] auth_age=%s device=%s\n", req.Zone, strings.Join(req.AMR, " "), age, dev)
	fmt.Fprintf(w, "  時刻 time=%s\n", req.Time.Format(time.RFC3339))
	for _, n := range notes {
		fmt.Fprintf(w, "  注記 (note): %s\n", n)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "照合した主体 (subjects): %s\n", strings.Join(x.Subjects, " "))
	fmt.Fprintf(w, "照合した対象 (objects):  %s\n", strings.Join(x.Objects, " "))
	if len(x.Rules) == 0 {
		fmt.Fprintln(w, "照合した規則 (matched rules): なし (none)")
	} else {
		fmt.Fprintln(w, "照合した規則 (matched rules):")
		for _, r := range x.Rules {
			fmt.Fprintf(w, "  %s  %-6s %-11s %s\n", r.Rule, r.Effect, r.Result, r.Text)
			for _, f := range r.Failed {
				fmt.Fprintf(w, "      満たさない条件 (failed): %s\n", f)
			}
		}
	}
	if len(x.ClassReasons) > 0 {
		parts := make([]string, len(x.ClassReasons))
		for i, r := range x.ClassReasons {
			parts[i] = string(r)
		}
		fmt.Fprintf(w, "分類 %s の要件で満たさないもの (class requirements not met): %s\n", req.Class, strings.Join(parts, ", "))
	}
	if len(x.Changes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "判定を変えるには (what would change it):")
		for _, c := range x.Changes {
			fmt.Fprintf(w, "  - %s\n    %s\n", c.Ja, c.En)
			if c.Rule != "" && !strings.Contains(c.Ja, c.Rule) {
				fmt.Fprintf(w, "    → 決め手になる規則 (deciding rule): %s\n", c.Rule)
			}
		}
	}
	fmt.Fprintf(w, "\nポリシー版 (policy version): %s\n", x.Version)
}

func newPolicyTestCmd() *cobra.Command {
	var configPath string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test --config F CASES.yaml…",
		Short: "期待する判定の表でポリシーを試験する (check expected decisions)",
		Long: `ケースファイル（要求と期待する判定の表）をゲートウェイと同じエンジンで判定し、
期待と異なるケースを差分つきで表示します。すべて合格なら終了コード 0、
不合格があれば 1 です。書式は docs/policy.md を参照。

Decides every case in the cases files with the gateway's engine and prints
a diff for each mismatch. Exit 0 when all pass, 1 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			eng, err := policy.New(cfg, policy.WithLogger(quietLogger()))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			passed, failed := 0, 0
			for _, path := range args {
				cs, err := policy.LoadCases(path)
				if err != nil {
					return err
				}
				for _, r := range cs.Run(eng, cfg, time.Now()) {
					switch {
					case r.Err != nil:
						failed++
						fmt.Fprintf(w, "NG  %s\n    %v\n", r.Case.Name, r.Err)
					case r.Diff != "":
						failed++
						fmt.Fprintf(w, "NG  %s (%s:%d)\n", r.Case.Name, path, r.Case.Line)
						for _, l := range strings.Split(r.Diff, "\n") {
							fmt.Fprintf(w, "    %s\n", l)
						}
					default:
						passed++
						if verbose {
							fmt.Fprintf(w, "OK  %s → %s %s\n", r.Case.Name, r.Got.Effect, r.Got.Rule)
						}
					}
				}
			}
			fmt.Fprintf(w, "合格 %d 件、不合格 %d 件 (%d passed, %d failed)\n", passed, failed, passed, failed)
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d 件のケースが期待と異なります (%w)", failed, policy.ErrCasesFailed)}
			}
			return nil
		},
	}
	addConfigFlag(cmd, &configPath)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "合格したケースも表示 (show passing cases)")
	return cmd
}

// quietLogger drops the engine's logs: the tools report errors themselves.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
