package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/internal/app"
	"github.com/sekisho/sekisho/internal/gctune"
)

func newServeCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "ゲートウェイを起動する (run the gateway)",
		Long: `設定ファイルに従ってゲートウェイを起動します。SIGTERM/SIGINT で受付を止め、
処理中の要求を完了してから終了します。SIGHUP でポリシーを再読み込みします
(誤りのあるポリシーは読み込まず、以前のポリシーを使い続けます)。

Runs the gateway. SIGTERM/SIGINT drain in-flight requests and exit;
SIGHUP reloads the policy (a bad policy keeps the old one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := app.New(ctx, cfg, app.WithLogger(log))
			if err != nil {
				return err
			}
			defer a.Close()
			addrs, err := a.Listen()
			if err != nil {
				return err
			}
			gc := gctune.Start(cfg.Server.GCHeapFloor())
			defer gc.Stop()
			log.Info("sekisho started", "listen", addrs, "routes", len(cfg.Routes), "policy", a.Policy.Version(),
				"gc_heap_floor_mib", gcFloorMiB(gc, cfg.Server.GCHeapFloor()))
			go reloadOnHUP(ctx, a, log)
			return a.Run(ctx)
		},
	}
	addConfigFlag(cmd, &cfgPath)
	return cmd
}

// reloadOnHUP reloads the policy on SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, a *app.App, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := a.ReloadPolicy(); err != nil {
				log.Error("policy reload refused; keeping the previous policy", "err", err)
				fmt.Fprintln(os.Stderr, "ポリシーの再読み込みに失敗しました。以前のポリシーを使い続けます:", err)
				continue
			}
			log.Info("policy reloaded", "version", a.Policy.Version())
		}
	}
}

// gcFloorMiB is the heap floor the collector runs with, for the start
// log line: 0 when off or when GOGC or GOMEMLIMIT in the environment
// take precedence.
func gcFloorMiB(t *gctune.Tuner, floor uint64) uint64 {
	if t == nil {
		return 0
	}
	return floor >> 20
}
