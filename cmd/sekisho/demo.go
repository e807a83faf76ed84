package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/internal/app"
	"github.com/sekisho/sekisho/internal/demo"
	"github.com/sekisho/sekisho/internal/gctune"
	"github.com/sekisho/sekisho/store"
)

func newDemoCmd() *cobra.Command {
	var opts demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "デモを起動する: CA・証明書・設定・サンプル業務システムを作成して起動 (run the whole product on its defaults)",
		Long: `何もインストールせずに製品全体を試せます。--dir (既定 ./sekisho-demo) に端末CA、
localhost 用サーバ証明書、デモ端末の証明書 (PEM と .p12)、設定、ポリシーを作成し、
2つのサンプル業務システム (財務会計: 機密性2、住民記録: 機密性3B) をゲートウェイの
後ろで起動して、接続先と1回限りのパスキー登録URLを表示します。2回目以降は同じ
ディレクトリを再利用します。

Creates a CA, certificates, config, policy and two sample internal apps
under --dir, starts everything and prints where to click. Running it again
reuses the directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			s, err := demo.Prepare(opts)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(s.ConfigPath)
			if err != nil {
				return err
			}
			logFile, err := os.OpenFile(filepath.Join(s.Dir, "sekisho.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				return err
			}
			defer logFile.Close()
			log := slog.New(slog.NewJSONHandler(logFile, nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := app.New(ctx, cfg, app.WithLogger(log))
			if err != nil {
				return err
			}
			defer a.Close()
			defer gctune.Start(cfg.Server.GCHeapFloor()).Stop()
			if _, err := a.Listen(); err != nil {
				return fmt.Errorf("%w\n(ポートが使用中なら --http-port/--https-port/--metrics-port を変えてください; change the ports if they are in use)", err)
			}
			u := &store.User{ID: demo.DemoUser, DisplayName: demo.DemoUserName, Department: demo.DemoDept, Roles: demo.DemoRoles}
			if err := a.Store.CreateUser(ctx, u); err != nil && !errors.Is(err, store.ErrExists) {
				return fmt.Errorf("creating the demo user: %w", err)
			}
			token, err := a.Authn.Invite(ctx, demo.DemoUser, 24*time.Hour)
			if err != nil {
				return fmt.Errorf("inviting the demo user: %w", err)
			}
			if err := s.StartApps(ctx); err != nil {
				return err
			}
			s.Banner(out, fmt.Sprintf("http://zaimu.gw.localhost:%d/.sekisho/enroll?token=%s", opts.HTTPPort, token))
			fmt.Fprintf(out, " ログ (log): %s\n\n", filepath.Join(s.Dir, "sekisho.log"))
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", "sekisho-demo", "デモ用ディレクトリ (demo directory)")
	f.IntVar(&opts.HTTPPort, "http-port", 8080, "HTTP (localhost) のポート")
	f.IntVar(&opts.HTTPSPort, "https-port", 8443, "HTTPS のポート")
	f.IntVar(&opts.MetricsPort, "metrics-port", 9090, "メトリクスのポート")
	return cmd
}
