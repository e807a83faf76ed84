package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/store"
)

func newRevokeCmd() *cobra.Command {
	var (
		cfgPath, userID, device, sessionID, reason string
		all                                        bool
	)
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "利用者・端末・セッションを即時に遮断する (kill switch)",
		Long: `利用者 (--user)、端末 (--device)、セッション (--session)、または全セッション (--all)
を直ちに無効にします。稼働中のすべてのゲートウェイが1秒以内に反映し、監査証跡に
記録します。端末を遮断すると、その端末証明書は CRL の更新を待たずに拒否されます
(CSIRT の「端末の切り離し」)。

Ends sessions at once: of a user, a device, one session, or everyone.
Every running replica applies it within a second and records it in the
audit trail. A revoked device's certificate is refused even before the
next CRL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, set := range []bool{userID != "", device != "", sessionID != "", all} {
				if set {
					n++
				}
			}
			if n != 1 {
				return &exitError{code: 2, err: errors.New("--user, --device, --session, --all のいずれか1つを指定してください (give exactly one of --user, --device, --session, --all)")}
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
			r := &store.Revocation{At: time.Now().UTC(), By: operator(), Reason: reason}
			switch {
			case userID != "":
				r.Kind, r.Subject = store.RevokeUser, userID
				u, err := st.GetUser(ctx, userID)
				if err != nil {
					return fmt.Errorf("利用者 %s が見つかりません (user %s): %w", userID, userID, err)
				}
				u.Disabled = true
				if err := st.UpdateUser(ctx, u); err != nil {
					return fmt.Errorf("disabling user %s: %w", userID, err)
				}
			case device != "":
				r.Kind, r.Subject = store.RevokeDevice, device
				d, err := st.GetDevice(ctx, device)
				if errors.Is(err, store.ErrNotFound) {
					d = &store.Device{ID: device, FirstSeen: r.At, LastSeen: r.At}
				} else if err != nil {
					return fmt.Errorf("reading device %s: %w", device, err)
				}
				d.Status, d.Reason = store.DeviceRevoked, reason
				if err := st.UpsertDevice(ctx, d); err != nil {
					return fmt.Errorf("revoking device %s: %w", device, err)
				}
			case sessionID != "":
				r.Kind, r.Subject = store.RevokeSession, sessionID
			default:
				r.Kind = store.RevokeAll
			}
			if err := st.AddRevocation(ctx, r); err != nil {
				return fmt.Errorf("recording revocation: %w", err)
			}
			if err := record("revoke_"+r.Kind, r.Subject, r.Reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "遮断しました (revoked): %s %s (#%d)\n", r.Kind, r.Subject, r.Seq)
			if r.Kind == store.RevokeUser {
				fmt.Fprintln(cmd.OutOrStdout(), "利用者は無効化されました。再開するには sekisho users enable を使います (the user is disabled; re-enable with sekisho users enable).")
			}
			return nil
		},
	}
	addConfigFlag(cmd, &cfgPath)
	f := cmd.Flags()
	f.StringVar(&userID, "user", "", "利用者ID (user id)")
	f.StringVar(&device, "device", "", "端末ID (device id)")
	f.StringVar(&sessionID, "session", "", "セッションID (session id)")
	f.BoolVar(&all, "all", false, "すべてのセッション (every session)")
	f.StringVar(&reason, "reason", "", "理由 (reason, recorded in the audit trail)")
	return cmd
}

// operator names who ran a command, for the audit trail.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return "cli:" + name
}
