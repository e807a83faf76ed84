// Package demo sets up and runs the whole product on its embedded
// defaults: a device CA, a server certificate for localhost, a demo device
// certificate (PEM and .p12), a configuration and policy, a demo user with
// a one-time enrollment URL, and two sample internal systems (財務会計 of
// class 2, 住民記録 of class 3B) behind the gateway.
//
// # Why two listeners
//
// Browsers refuse WebAuthn on pages with certificate errors, and the demo's
// CA is not trusted by the browser. So the gateway also serves plain HTTP on
// localhost, which browsers treat as a secure context; the HTTPS listener is
// there to try the device certificate (.p12).
//
// # Re-running
//
// [Prepare] creates what is missing in the directory and keeps what is
// there, so a second run reuses the CA, certificates, users and passkeys.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/examples/apps/sampleapp"
)

// Options for the demo.
type Options struct {
	// Dir holds everything the demo creates. Default ./sekisho-demo.
	Dir string
	// HTTPPort and HTTPSPort of the gateway on 127.0.0.1. Defaults 8080, 8443.
	HTTPPort, HTTPSPort int
	// MetricsPort for /metrics, /healthz, /readyz. Default 9090.
	MetricsPort int
}

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = "sekisho-demo"
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = 8080
	}
	if o.HTTPSPort == 0 {
		o.HTTPSPort = 8443
	}
	if o.MetricsPort == 0 {
		o.MetricsPort = 9090
	}
}

// Setup is a prepared demo directory.
type Setup struct {
	Dir        string
	ConfigPath string
	// AppPorts are the loopback ports of the sample apps, by route name.
	AppPorts map[string]int
	// P12Path and P12Password of the demo device certificate.
	P12Path, P12Password string
	Opts                 Options
}

// Demo user.
const (
	DemoUser     = "demo"
	DemoUserName = "デモ 職員"
	DemoDept     = "財務課"
)

// DemoRoles are the demo user's roles: 財務 for the 財務会計 export, 住民記録
// for the 3B system, admin for the console.
var DemoRoles = []string{"財務", "住民記録", "admin"}

// Prepare creates whatever is missing under opts.Dir.
func Prepare(opts Options) (*Setup, error) {
	opts.defaults()
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating demo directory: %w", err)
	}
	s := &Setup{Dir: dir, ConfigPath: filepath.Join(dir, "sekisho.yaml"), Opts: opts, AppPorts: map[string]int{}}

	caDir := filepath.Join(dir, "ca")
	ca, err := certs.Load(caDir)
	if errors.Is(err, fs.ErrNotExist) {
		ca, err = certs.Init(caDir, certs.WithName("sekisho デモ端末CA"))
	}
	if err != nil {
		return nil, fmt.Errorf("device CA in %s: %w", caDir, err)
	}
	serverPEM := filepath.Join(dir, "server.pem")
	if !exists(serverPEM) {
		certPEM, keyPEM, err := ca.IssueServer([]string{"localhost", "gw.localhost", "zaimu.gw.localhost", "juki.gw.localhost", "127.0.0.1", "::1"}, 825)
		if err != nil {
			return nil, fmt.Errorf("issuing the server certificate: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "server-key.pem"), keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(serverPEM, certPEM, 0o644); err != nil {
			return nil, err
		}
	}
	devDir := filepath.Join(dir, "device")
	s.P12Path = filepath.Join(devDir, "demo-pc.p12")
	pwFile := s.P12Path + ".password"
	if !exists(s.P12Path) {
		if err := os.MkdirAll(devDir, 0o700); err != nil {
			return nil, err
		}
		is, err := ca.IssueDevice(certs.DeviceRequest{Device: "DEMO-PC-0001", User: DemoUser, Days: 365})
		if err != nil {
			return nil, fmt.Errorf("issuing the demo device certificate: %w", err)
		}
		if err := is.WriteFiles(filepath.Join(devDir, "demo-pc")); err != nil {
			return nil, err
		}
		if err := os.WriteFile(pwFile, []byte(is.Password+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	if pw, err := os.ReadFile(pwFile); err == nil {
		s.P12Password = strings.TrimSpace(string(pw))
	}
	crl := filepath.Join(dir, "device-crl.pem")
	if err := ca.WriteCRL(crl, 7*24*time.Hour); err != nil {
		return nil, fmt.Errorf("writing the CRL: %w", err)
	}

	if !exists(s.ConfigPath) {
		zaimu, err := freePort()
		if err != nil {
			return nil, err
		}
		juki, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(s.ConfigPath, []byte(configText(opts, zaimu, juki)), 0o600); err != nil {
			return nil, err
		}
	}
	if p := filepath.Join(dir, "policy.csv"); !exists(p) {
		if err := os.WriteFile(p, []byte(policyText), 0o600); err != nil {
			return nil, err
		}
	}
	cfg, err := config.Load(s.ConfigPath)
	if err != nil {
		return nil, err
	}
	for _, r := range cfg.Routes {
		port, _ := strconv.Atoi(r.Upstream.Port())
		s.AppPorts[r.Name] = port
	}
	return s, nil
}

// StartApps starts the sample internal systems on their loopback ports
// until ctx ends.
func (s *Setup) StartApps(ctx context.Context) error {
	titles := map[string]string{"zaimu": "財務会計システム (デモ)", "juki": "住民記録システム (デモ)"}
	hosts := map[string]string{"zaimu": "zaimu.gw.localhost", "juki": "juki.gw.localhost"}
	for name, port := range s.AppPorts {
		// The app fetches the gateway's keys through the gateway itself.
		jwks := fmt.Sprintf("http://127.0.0.1:%d/.well-known/sekisho/jwks.json", s.Opts.HTTPPort)
		client := &http.Client{Timeout: 5 * time.Second, Transport: hostTransport{host: hosts[name]}}
		app, err := sampleapp.New(ctx, sampleapp.Options{Title: titles[name], Audience: name, JWKSURL: jwks, Client: client})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("sample app %s: port %d is in use (edit %s or remove it to choose new ports): %w", name, port, s.ConfigPath, err)
		}
		srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
	}
	return nil
}

// hostTransport sends requests with a fixed Host header, so the sample app
// reaches the gateway's JWKS on its route host without DNS.
type hostTransport struct{ host string }

func (t hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = t.host
	return http.DefaultTransport.RoundTrip(r)
}

// Banner is what the demo prints once it is serving.
func (s *Setup) Banner(w io.Writer, enrollURL string) {
	o := s.Opts
	fmt.Fprintf(w, `
================================================================
 sekisho (関所) デモが起動しました / the demo is running
================================================================
 1. パスキーを登録 (enroll a passkey, one-time URL, 24h):
      %s

 2. 庁内システムを開く (open the internal systems):
      財務会計 (機密性2)  http://zaimu.gw.localhost:%d/
      住民記録 (機密性3B) http://juki.gw.localhost:%d/
    ※ 住民記録は端末証明書が必要です。HTTP では「端末証明書が必要」と
      拒否されるのが正しい動作です (3B needs a device certificate; over
      HTTP it is refused on purpose).

 3. 端末証明書を試す (try the device certificate over HTTPS):
      https://zaimu.gw.localhost:%d/  https://juki.gw.localhost:%d/
      証明書 (.p12): %s
      パスワード (password): %s
      CA (ブラウザに信頼させる場合 / to trust): %s

 管理コンソール (admin console, 3A: 端末証明書が必要 / needs the device certificate):
      https://zaimu.gw.localhost:%d/.sekisho/admin/

 4. 監査証跡 (audit trail):
      go run ./cmd/sekisho audit verify --dir %s
      go run ./cmd/sekisho audit query --dir %s --format table

    メトリクス (metrics): http://127.0.0.1:%d/metrics
    設定 (config): %s
    停止は Ctrl+C (stop with Ctrl+C)
================================================================
`, enrollURL, o.HTTPPort, o.HTTPPort, o.HTTPSPort, o.HTTPSPort, s.P12Path, s.P12Password,
		filepath.Join(s.Dir, "ca", "ca.pem"), o.HTTPSPort, filepath.Join(s.Dir, "data", "audit"), filepath.Join(s.Dir, "data", "audit"),
		o.MetricsPort, s.ConfigPath)
}

func configText(o Options, zaimu, juki int) string {
	return fmt.Sprintf(`# sekisho デモ設定 (demo configuration) — sekisho demo が作成しました。
# 本番では docs/config.md と examples/ を参照してください。
server:
  listen: "127.0.0.1:%d"        # HTTPS (端末証明書を試す / device certificates)
  http_listen: "127.0.0.1:%d"   # HTTP on localhost (WebAuthn の secure context)
  tls: {cert: server.pem, key: server-key.pem}
  client_ca: [ca/ca.pem]
  crl: device-crl.pem
  metrics_listen: "127.0.0.1:%d"
store: {driver: sqlite, dsn: data/sekisho.db}
webauthn:
  rp_id: gw.localhost
  rp_name: "sekisho デモ"
session: {lifetime: 10h, idle: 30m}
zones:
  chonai: [127.0.0.0/8, "::1/128"]   # デモでは手元のPCを庁内とみなす
routes:
  - name: zaimu
    host: zaimu.gw.localhost
    upstream: http://127.0.0.1:%d
    segment: lgwan
    class: "2"
    paths: [{prefix: /export, class: "3B", action: export}]
  - name: juki
    host: juki.gw.localhost
    upstream: http://127.0.0.1:%d
    segment: mynumber
    class: "3B"
policy: {file: policy.csv, profile: beta-prime}
audit: {dir: data/audit, checkpoint_every: 1000}
`, o.HTTPSPort, o.HTTPPort, o.MetricsPort, zaimu, juki)
}

const policyText = `# sekisho デモ用ポリシー (demo policy). 書式は docs/policy.md を参照。
condition, 庁内,     zone=chonai
condition, 新しいUV, amr=hwk+uv max_auth_age=1h
condition, 登録端末, device=registered
condition, 管理者UV, amr=hwk+uv max_auth_age=15m

# 機密性2: 全職員、庁内から
allow,  *,            class:2,     read|write, 庁内
# 財務会計の書き出し (3B): 財務ロール、1時間以内のUV認証
stepup, role:財務,     route:zaimu, export,     庁内 & 新しいUV
# 住民記録 (3B): 住民記録ロール、登録端末、1時間以内のUV認証
stepup, role:住民記録, route:juki,  read|write, 庁内 & 新しいUV & 登録端末
# 管理コンソール (機密性3A の要件): admin ロール、登録端末、15分以内のUV認証
stepup, role:admin,   route:admin, admin,      庁内 & 管理者UV & 登録端末
`

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
