package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/text/width"

	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/store"
)

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "職員アカウントの管理 (staff accounts)",
		Long: `職員アカウントを追加・一覧・利用停止・再開し、パスキー登録用の一回限りのURLを発行します。
職員はパスワードを持たず、登録用URLからパスキーを登録してログインします。

Adds, lists, disables and re-enables staff accounts, and issues the one-time
enrollment URL through which a user registers a passkey (there are no passwords).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return &exitError{code: 2, err: errors.New("サブコマンドを指定してください: add, list, disable, enable, invite (give a subcommand)")}
		},
	}
	cmd.AddCommand(newUsersAddCmd(), newUsersListCmd(), newUsersDisableCmd(), newUsersEnableCmd(), newUsersInviteCmd(),
		newUsersImportCmd(), newUsersSyncCmd(), newUsersPendingCmd())
	return cmd
}

// userIDPattern: what a user id may be. It appears in audit records,
// assertions and URLs, so it stays plain.
var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newUsersAddCmd() *cobra.Command {
	var cfgPath, id, name, roles, department string
	cmd := &cobra.Command{
		Use:   "add --id U --name 名前 [--roles a,b] [--department 所属]",
		Short: "職員アカウントを追加する (add a staff account)",
		Example: `  sekisho users add --config sekisho.yaml --id yamada --name "山田 太郎" --roles zaimu-user --department 財務課
  sekisho users invite --config sekisho.yaml --id yamada`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !userIDPattern.MatchString(id) {
				return &exitError{code: 2, err: fmt.Errorf("--id %q: 英数字で始まり、英数字と . _ @ - からなる64文字以内にしてください (want letters, digits, . _ @ -, at most 64, starting with a letter or digit)", id)}
			}
			if strings.TrimSpace(name) == "" {
				return &exitError{code: 2, err: errors.New("--name を指定してください (give the display name)")}
			}
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			record, err := adminAudit(cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := openStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			now := time.Now().UTC()
			u := &store.User{ID: id, DisplayName: strings.TrimSpace(name), Department: strings.TrimSpace(department), Roles: splitList(roles), CreatedAt: now, UpdatedAt: now}
			if err := st.CreateUser(ctx, u); errors.Is(err, store.ErrExists) {
				return fmt.Errorf("利用者 %s は既に存在します (user %s already exists)", id, id)
			} else if err != nil {
				return fmt.Errorf("adding user %s: %w", id, err)
			}
			if err := record("user_add", id, fmt.Sprintf("%s / %s / %s", u.DisplayName, u.Department, strings.Join(u.Roles, ","))); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "利用者 %s (%s) を追加しました (user added)。次に登録用URLを発行してください: sekisho users invite --id %s\n", id, u.DisplayName, id)
			return nil
		},
	}
	addConfigFlag(cmd, &cfgPath)
	cmd.Flags().StringVar(&id, "id", "", "利用者ID (user id)")
	cmd.Flags().StringVar(&name, "name", "", "表示名 (display name)")
	cmd.Flags().StringVar(&roles, "roles", "", "ロール、カンマ区切り (roles, comma-separated)")
	cmd.Flags().StringVar(&department, "department", "", "所属 (department)")
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// userRow is one line of `users list`.
type userRow struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"display_name"`
	Department  string   `json:"department"`
	Roles       []string `json:"roles"`
	Disabled    bool     `json:"disabled"`
	Passkeys    int      `json:"passkeys"`
	CreatedAt   string   `json:"created_at"`
}

func newUsersListCmd() *cobra.Command {
	var cfgPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "職員アカウントの一覧 (list staff accounts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, st, err := loadConfigAndStore(ctx, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			users, err := st.ListUsers(ctx)
			if err != nil {
				return fmt.Errorf("listing users: %w", err)
			}
			sums, err := st.CredentialSummaries(ctx)
			if err != nil {
				return fmt.Errorf("listing passkeys: %w", err)
			}
			rows := make([]userRow, 0, len(users))
			for _, u := range users {
				roles := u.Roles
				if roles == nil {
					roles = []string{}
				}
				rows = append(rows, userRow{ID: u.ID, DisplayName: u.DisplayName, Department: u.Department, Roles: roles,
					Disabled: u.Disabled, Passkeys: sums[u.ID].Count, CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339)})
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			table := [][]string{{"ID", "表示名 (name)", "所属 (department)", "ロール (roles)", "状態 (status)", "パスキー (passkeys)"}}
			for _, r := range rows {
				status := "有効 (active)"
				if r.Disabled {
					status = "停止 (disabled)"
				}
				table = append(table, []string{r.ID, r.DisplayName, r.Department, strings.Join(r.Roles, ","), status, strconv.Itoa(r.Passkeys)})
			}
			writeTable(out, table)
			return nil
		},
	}
	addConfigFlag(cmd, &cfgPath)
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON で出力する (print JSON)")
	return cmd
}

// displayWidth counts East Asian wide and full-width characters as two
// columns, as a terminal shows them.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// writeTable prints rows in columns padded by display width.
func writeTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], displayWidth(cell))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, cell := range row {
			b.WriteString(cell)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-displayWidth(cell)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// setDisabled loads user id, sets Disabled and saves it.
func setDisabled(cmd *cobra.Command, st store.Store, id string, disabled bool) (*store.User, error) {
	ctx := cmd.Context()
	u, err := st.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("利用者 %s が見つかりません (no such user %s)", id, id)
	} else if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", id, err)
	}
	u.Disabled = disabled
	u.UpdatedAt = time.Now().UTC()
	if err := st.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("updating user %s: %w", id, err)
	}
	return u, nil
}

func newUsersDisableCmd() *cobra.Command {
	var cfgPath, id, reason string
	cmd := &cobra.Command{
		Use:   "disable --id U",
		Short: "利用を停止し、セッションをすべて無効にする (disable a user and end their sessions)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, st, record, err := loadAdmin(cmd.Context(), cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := setDisabled(cmd, st, id, true); err != nil {
				return err
			}
			if reason == "" {
				reason = "users disable"
			}
			// Every replica's session manager picks this up within a second.
			rev := &store.Revocation{Kind: store.RevokeUser, Subject: id, At: time.Now().UTC(), By: operator(), Reason: reason}
			if err := st.AddRevocation(cmd.Context(), rev); err != nil {
				return fmt.Errorf("revoking the sessions of %s: %w", id, err)
			}
			if err := record("user_disable", id, reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "利用者 %s の利用を停止し、セッションをすべて無効にしました (user disabled; sessions revoked)\n", id)
			return nil
		},
	}
	addConfigFlag(cmd, &cfgPath)
	cmd.Flags().StringVar(&id, "id", "", "利用者ID (user id)")
	cmd.Flags().StringVar(&reason, "reason", "", "理由、監査用 (reason, for the audit trail)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func newUsersEnableCmd() *cobra.Command {
	var cfgPath, id string
	cmd := &cobra.Command{
		Use:   "enable --id U",
		Short: "利用停止を解除する (re-enable a user)",
		Long: `利用停止を解除します。停止前に発行されたセッションは無効のままです。

Re-enables a user. Sessions issued before the user was disabled stay revoked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, st, record, err := loadAdmin(cmd.Context(), cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := setDisabled(cmd, st, id, false); err != nil {
				return err
			}
			if err := record("user_enable", id, ""); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "利用者 %s の利用を再開しました (user enabled)\n", id)
			return nil
		},
	}
	addConfigFlag(cmd, &cfgPath)
	cmd.Flags().StringVar(&id, "id", "", "利用者ID (user id)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

// jst is the time zone staff read times in.
var jst = time.FixedZone("JST", 9*60*60)

func newUsersInviteCmd() *cobra.Command {
	var cfgPath, id, host string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "invite --id U [--ttl 24h] [--host H]",
		Short: "パスキー登録用の一回限りのURLを発行する (print a one-time enrollment URL)",
		Long: `パスキー登録用の一回限りのURLを発行し、標準出力に出力します。URLは一度だけ、
有効期限まで使えます。本人に安全な方法で渡してください。

Prints a one-time enrollment URL on stdout: it works once, until it expires.
Hand it to the user over a trusted channel. The host is --host or the first
route's; the port is server.public_port or server.listen's. With
server.http_listen and a localhost host, the plain-HTTP URL is printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, st, record, err := loadAdmin(ctx, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			now := time.Now()
			token, err := authn.CreateInvitation(ctx, st, id, operator(), ttl, now)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("利用者 %s が見つかりません。先に sekisho users add で追加してください (no such user %s)", id, id)
			case errors.Is(err, authn.ErrUserDisabled):
				return fmt.Errorf("利用者 %s は利用停止中です (user %s is disabled)", id, id)
			case err != nil:
				return err
			}
			u, err := authn.EnrollURL(cfg, host, token)
			if err != nil {
				return err
			}
			// The token itself is never recorded, only that one was issued.
			if err := record("invite", id, "ttl "+ttl.String()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), u)
			fmt.Fprintf(cmd.ErrOrStderr(), "%s さんのパスキー登録用URLです。1回限り、%s まで有効です。\n(one-time enrollment URL for %s, valid until %s)\n",
				id, now.Add(ttl).In(jst).Format("2006-01-02 15:04 MST"), id, now.Add(ttl).UTC().Format(time.RFC3339))
			return nil
		},
	}
	addConfigFlag(cmd, &cfgPath)
	cmd.Flags().StringVar(&id, "id", "", "利用者ID (user id)")
	cmd.Flags().DurationVar(&ttl, "ttl", authn.DefaultInviteTTL, "有効期間 (lifetime), 最大 (at most) 720h")
	cmd.Flags().StringVar(&host, "host", "", "URLのホスト名、既定は最初のルート (host of the URL; default: the first route's)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}
