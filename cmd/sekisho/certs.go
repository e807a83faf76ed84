package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/store"
)

// newCertsCmd is `sekisho certs`: the small device CA.
func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "端末証明書の認証局 (device certificate CA)",
		Long: `PKI を持たない団体のための小さな端末証明書認証局です。
CA ディレクトリはオフラインの端末など限られた場所に置いてください。

A small device-certificate CA for cities without a PKI of their own.
Keep the CA directory on an offline or tightly held machine.`,
	}
	cmd.AddCommand(newCertsInitCmd(), newCertsIssueCmd(), newCertsRevokeCmd(),
		newCertsCRLCmd(), newCertsServerCmd(), newCertsListCmd())
	return cmd
}

func addDirFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "dir", "", "CA ディレクトリ (CA directory)")
	_ = cmd.MarkFlagRequired("dir")
}

func newCertsInitCmd() *cobra.Command {
	var dir, name, alg string
	var years int
	cmd := &cobra.Command{
		Use:   "init --dir D",
		Short: "認証局を作成する (create the CA)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := []certs.Option{certs.WithCAYears(years), certs.WithKeyAlgorithm(certs.KeyAlgorithm(alg))}
			if name != "" {
				opts = append(opts, certs.WithName(name))
			}
			ca, err := certs.Init(dir, opts...)
			if err != nil {
				return fmt.Errorf("認証局を作成できません / creating the CA failed: %w", err)
			}
			c := ca.Certificate()
			fmt.Fprintf(cmd.OutOrStdout(), "認証局を作成しました / created the CA: %s\n", dir)
			fmt.Fprintf(cmd.OutOrStdout(), "  subject:     %s\n  not after:   %s\n  fingerprint: %s\n",
				c.Subject, c.NotAfter.UTC().Format(time.RFC3339), certs.Fingerprint(c.Raw))
			fmt.Fprintf(cmd.OutOrStdout(), "ゲートウェイの server.client_ca に %s/%s を指定してください / set server.client_ca to %s/%s\n",
				dir, certs.CertFile, dir, certs.CertFile)
			return nil
		},
	}
	addDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&name, "name", "", `CA の名前 (CA common name), 例 "○○市 端末認証局"`)
	cmd.Flags().StringVar(&alg, "key-algorithm", string(certs.ECDSAP256), "鍵の種類 (key type): ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072")
	cmd.Flags().IntVar(&years, "years", certs.DefaultCAYears, "CA 証明書の有効期間・年 (CA validity in years)")
	return cmd
}

func newCertsIssueCmd() *cobra.Command {
	var dir, device, user, out, passwordFile, cfgPath string
	var days int
	var legacy bool
	cmd := &cobra.Command{
		Use:   "issue --dir D --device ID [--user U] [--days N] --out PREFIX [--password-file F] [--config F]",
		Short: "端末証明書を発行する (issue a device certificate)",
		Long: `端末証明書を発行し、PREFIX.pem, PREFIX-key.pem, PREFIX.p12 を書き出します。
--password-file がなければ .p12 のパスワードを生成し、一度だけ表示します。
--config を付けると、その設定の store の端末台帳に登録済み (active、所有者は --user)
として記録し、監査証跡に残します (devices.registration: manual のときの登録方法)。

Issues a device certificate and writes PREFIX.pem, PREFIX-key.pem and
PREFIX.p12. Without --password-file a .p12 password is generated and shown once.
With --config the device is recorded as registered (active, owner --user) in
that configuration's store and in the audit trail (how devices are registered
under devices.registration: manual).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := certs.DeviceRequest{Device: device, User: user, Days: days, LegacyP12: legacy}
			if passwordFile != "" {
				data, err := os.ReadFile(passwordFile)
				if err != nil {
					return fmt.Errorf("パスワードファイルを読めません / reading password file: %w", err)
				}
				req.Password = strings.TrimRight(string(data), "\r\n")
				if req.Password == "" {
					return fmt.Errorf("パスワードファイルが空です / password file %s is empty", passwordFile)
				}
			}
			ca, err := certs.Load(dir)
			if err != nil {
				return fmt.Errorf("認証局を読み込めません / loading the CA failed: %w", err)
			}
			// With --config, check the store and the audit trail open
			// before anything is issued.
			var register func(fp string) error
			if cfgPath != "" {
				_, st, record, err := loadAdmin(cmd.Context(), cfgPath)
				if err != nil {
					return err
				}
				defer st.Close()
				register = func(fp string) error {
					return registerDevice(cmd.Context(), st, record, device, user, fp)
				}
			}
			for _, suffix := range []string{".pem", "-key.pem", ".p12"} {
				if _, err := os.Lstat(out + suffix); err == nil {
					return fmt.Errorf("出力先が既にあります / %s already exists", out+suffix)
				}
			}
			is, err := ca.IssueDevice(req)
			if err != nil {
				return fmt.Errorf("端末証明書を発行できません / issuing failed: %w", err)
			}
			if err := is.WriteFiles(out); err != nil {
				return fmt.Errorf("証明書ファイルを書き込めません / writing files failed (serial %s is recorded; revoke it): %w", is.Serial, err)
			}
			if register != nil {
				if err := register(is.Fingerprint); err != nil {
					return fmt.Errorf("証明書は発行しましたが端末台帳に登録できません / issued, but registering the device failed (serial %s): %w", is.Serial, err)
				}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "端末証明書を発行しました / issued device certificate\n")
			fmt.Fprintf(w, "  device:      %s\n", device)
			if user != "" {
				fmt.Fprintf(w, "  user:        %s\n", user)
			}
			fmt.Fprintf(w, "  serial:      %s\n  fingerprint: %s\n", is.Serial, is.Fingerprint)
			fmt.Fprintf(w, "  files:       %s.pem %s-key.pem %s.p12\n", out, out, out)
			if register != nil {
				fmt.Fprintf(w, "  registered:  端末台帳に登録しました / recorded as registered in the store\n")
			}
			if legacy {
				fmt.Fprintln(w, "注意: .p12 は旧形式 (3DES/SHA-1) です。取り込み後すぐに削除してください / note: legacy .p12 (3DES/SHA-1); delete it after import")
			}
			if passwordFile == "" {
				fmt.Fprintf(w, ".p12 のパスワード (この一度だけ表示します) / .p12 password (shown only once): %s\n", is.Password)
			}
			return nil
		},
	}
	addDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&device, "device", "", "端末 ID (device id), 例 PC-0123")
	cmd.Flags().StringVar(&user, "user", "", "利用者 ID (bind to a user, optional)")
	cmd.Flags().IntVar(&days, "days", certs.DefaultDeviceDays, "有効日数 (validity in days)")
	cmd.Flags().StringVar(&out, "out", "", "出力ファイルの接頭辞 (output file prefix)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", ".p12 のパスワードを読むファイル (file holding the .p12 password)")
	cmd.Flags().StringVar(&cfgPath, "config", "", "この設定の store に登録済みとして記録する (record the device as registered in this configuration's store)")
	cmd.Flags().BoolVar(&legacy, "legacy-p12", false, "旧い Windows (10 1809 より前) 向けに 3DES/SHA-1 で .p12 を暗号化 (for Windows before 10 1809; weaker)")
	_ = cmd.MarkFlagRequired("device")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newCertsRevokeCmd() *cobra.Command {
	var dir, serial, device, reason string
	cmd := &cobra.Command{
		Use:   "revoke --dir D (--serial S | --device ID) [--reason R]",
		Short: "証明書を失効させる (revoke a certificate or all of a device's)",
		Long: `証明書を失効させます。ゲートウェイに反映するには続けて certs crl で CRL を書き出してください。
理由 (reason): unspecified, keyCompromise, affiliationChanged, superseded,
cessationOfOperation, privilegeWithdrawn.

Revokes a certificate (or every certificate of a device). Run certs crl
afterwards to publish the change to the gateway.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (serial == "") == (device == "") {
				return &exitError{code: 2, err: fmt.Errorf("--serial と --device のどちらか一方を指定してください / give exactly one of --serial or --device")}
			}
			ca, err := certs.Load(dir)
			if err != nil {
				return fmt.Errorf("認証局を読み込めません / loading the CA failed: %w", err)
			}
			w := cmd.OutOrStdout()
			if serial != "" {
				if err := ca.Revoke(serial, reason); err != nil {
					return fmt.Errorf("失効できません / revoking failed: %w", err)
				}
				fmt.Fprintf(w, "証明書を失効させました / revoked certificate %s\n", serial)
			} else {
				n, err := ca.RevokeDevice(device, reason)
				if err != nil {
					return fmt.Errorf("失効できません / revoking failed: %w", err)
				}
				fmt.Fprintf(w, "端末 %s の証明書を %d 件失効させました / revoked %d certificate(s) of device %s\n", device, n, n, device)
			}
			fmt.Fprintln(w, "certs crl で CRL を更新してください / run certs crl to publish the CRL")
			return nil
		},
	}
	addDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&serial, "serial", "", "シリアル番号・16進 (serial number, hex)")
	cmd.Flags().StringVar(&device, "device", "", "端末 ID: その端末の証明書をすべて失効 (revoke all of this device's certificates)")
	cmd.Flags().StringVar(&reason, "reason", "", "失効理由 (revocation reason)")
	return cmd
}

func newCertsCRLCmd() *cobra.Command {
	var dir, out string
	var days int
	cmd := &cobra.Command{
		Use:   "crl --dir D --out F [--days N]",
		Short: "CRL を書き出す (write the certificate revocation list)",
		Long: `署名した CRL を F に書き出します。ゲートウェイは server.crl のファイルが変わると読み直します。
有効期限 (--days) が切れる前に必ず再発行してください。

Writes a signed CRL to F. The gateway reloads server.crl when it changes.
Publish a new one before --days runs out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days <= 0 {
				return &exitError{code: 2, err: fmt.Errorf("--days は 1 以上 / --days must be at least 1, got %d", days)}
			}
			ca, err := certs.Load(dir)
			if err != nil {
				return fmt.Errorf("認証局を読み込めません / loading the CA failed: %w", err)
			}
			if err := ca.WriteCRL(out, time.Duration(days)*24*time.Hour); err != nil {
				return fmt.Errorf("CRL を書き出せません / writing the CRL failed: %w", err)
			}
			revoked := 0
			for _, e := range ca.List() {
				if e.Revoked() {
					revoked++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CRL を書き出しました / wrote CRL: %s (%d revoked, next update %s)\n",
				out, revoked, time.Now().Add(time.Duration(days)*24*time.Hour).UTC().Format(time.RFC3339))
			return nil
		},
	}
	addDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&out, "out", "", "出力ファイル (output file)")
	cmd.Flags().IntVar(&days, "days", 7, "次回更新までの日数 (days until nextUpdate)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newCertsServerCmd() *cobra.Command {
	var dir, out string
	var hosts []string
	var days int
	cmd := &cobra.Command{
		Use:   "server --dir D --host H [--host H2…] --out PREFIX",
		Short: "ゲートウェイのサーバー証明書を発行する (issue the gateway's TLS certificate)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := certs.Load(dir)
			if err != nil {
				return fmt.Errorf("認証局を読み込めません / loading the CA failed: %w", err)
			}
			for _, suffix := range []string{".pem", "-key.pem"} {
				if _, err := os.Lstat(out + suffix); err == nil {
					return fmt.Errorf("出力先が既にあります / %s already exists", out+suffix)
				}
			}
			certPEM, keyPEM, err := ca.IssueServer(hosts, days)
			if err != nil {
				return fmt.Errorf("サーバー証明書を発行できません / issuing failed: %w", err)
			}
			is := &certs.Issued{CertPEM: certPEM, KeyPEM: keyPEM}
			if err := is.WriteFiles(out); err != nil {
				return fmt.Errorf("証明書ファイルを書き込めません / writing files failed: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "サーバー証明書を発行しました / issued server certificate: %s.pem %s-key.pem (%s)\n",
				out, out, strings.Join(hosts, ", "))
			return nil
		},
	}
	addDirFlag(cmd, &dir)
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "ホスト名または IP (DNS name or IP; repeatable)")
	cmd.Flags().StringVar(&out, "out", "", "出力ファイルの接頭辞 (output file prefix)")
	cmd.Flags().IntVar(&days, "days", certs.DefaultServerDays, "有効日数 (validity in days)")
	_ = cmd.MarkFlagRequired("host")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newCertsListCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --dir D [--json]",
		Short: "発行した証明書の一覧 (list issued certificates)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := certs.Load(dir)
			if err != nil {
				return fmt.Errorf("認証局を読み込めません / loading the CA failed: %w", err)
			}
			entries := ca.List()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tKIND\tDEVICE/HOSTS\tUSER\tNOT AFTER\tSTATUS")
			for _, e := range entries {
				name := e.Device
				if e.Kind == certs.KindServer {
					name = strings.Join(e.Hosts, ",")
				}
				status := "valid"
				if e.Revoked() {
					status = "revoked (" + e.Reason + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Serial, e.Kind, name, orDash(e.User),
					e.NotAfter.Format("2006-01-02"), status)
			}
			return tw.Flush()
		},
	}
	addDirFlag(cmd, &dir)
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON で出力 (print JSON)")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// registerDevice records device as registered (active) in the store, with
// owner and certificate fingerprint, keeping what the store knew of it, and
// writes the admin audit record.
func registerDevice(ctx context.Context, st store.Store, record func(action, target, detail string) error, device, owner, fp string) error {
	now := time.Now()
	d, err := st.GetDevice(ctx, device)
	switch {
	case errors.Is(err, store.ErrNotFound):
		d = &store.Device{ID: device, FirstSeen: now}
	case err != nil:
		return err
	}
	d.Status, d.Reason = store.DeviceActive, ""
	if owner != "" {
		d.Owner = owner
	}
	if !slices.Contains(d.Fingerprints, fp) {
		d.Fingerprints = append(d.Fingerprints, fp)
	}
	if err := st.UpsertDevice(ctx, d); err != nil {
		return err
	}
	return record("device_register", device, "owner="+d.Owner+"; certificate "+fp)
}
