package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
)

// docs reads every YAML document of every .yaml file in dir.
func docs(t *testing.T, dir string) map[string][]map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML in %s: %v", dir, err)
	}
	out := map[string][]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d map[string]any
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if d != nil {
				out[filepath.Base(f)] = append(out[filepath.Base(f)], d)
			}
		}
	}
	return out
}

// get walks a decoded document: get(d, "spec", "template", "spec").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func byKind(all map[string][]map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, ds := range all {
		for _, d := range ds {
			if d["kind"] == kind {
				out = append(out, d)
			}
		}
	}
	return out
}

func TestKubernetesManifests(t *testing.T) {
	all := docs(t, ".")

	deps := byKind(all, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("want one Deployment, got %d", len(deps))
	}
	dep := deps[0]
	if n, _ := get(dep, "spec", "replicas").(int); n < 2 {
		t.Errorf("Deployment replicas = %v, want at least 2", get(dep, "spec", "replicas"))
	}
	podLabels, _ := get(dep, "spec", "template", "metadata", "labels").(map[string]any)
	if len(podLabels) == 0 {
		t.Fatal("pod template has no labels")
	}
	pod := get(dep, "spec", "template", "spec")
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	c := get(pod, "containers", 0)
	sc := get(c, "securityContext")
	for k, want := range map[string]any{"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false} {
		if get(sc, k) != want {
			t.Errorf("container securityContext.%s = %v, want %v", k, get(sc, k), want)
		}
	}
	if caps := get(sc, "capabilities", "drop", 0); caps != "ALL" {
		t.Errorf("container capabilities.drop = %v, want [ALL]", caps)
	}
	ports := map[string]int{}
	for i := 0; get(c, "ports", i) != nil; i++ {
		n, _ := get(c, "ports", i, "name").(string)
		p, _ := get(c, "ports", i, "containerPort").(int)
		ports[n] = p
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"} {
		if got := get(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %v, want %s", probe, got, path)
		}
		if got := get(c, probe, "httpGet", "port"); got != "metrics" {
			t.Errorf("%s port = %v, want the metrics port", probe, got)
		}
	}
	if ports["metrics"] == 0 || ports["https"] == 0 {
		t.Errorf("container ports = %v, want https and metrics", ports)
	}
	var pgpass bool
	for i := 0; get(c, "env", i) != nil; i++ {
		if get(c, "env", i, "name") == "PGPASSWORD" && get(c, "env", i, "valueFrom", "secretKeyRef", "name") != nil {
			pgpass = true
		}
	}
	if !pgpass {
		t.Error("PGPASSWORD does not come from a Secret")
	}

	pdbs := byKind(all, "PodDisruptionBudget")
	if len(pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(pdbs))
	}
	if !selects(get(pdbs[0], "spec", "selector", "matchLabels"), podLabels) {
		t.Error("the PodDisruptionBudget does not select the gateway's pods")
	}
	if min, _ := get(pdbs[0], "spec", "minAvailable").(int); min < 1 || min > get(dep, "spec", "replicas").(int)-1 {
		t.Errorf("PodDisruptionBudget minAvailable = %v: want at least 1 and below the replica count", get(pdbs[0], "spec", "minAvailable"))
	}
	svcs := byKind(all, "Service")
	if len(svcs) == 0 {
		t.Fatal("no Service")
	}
	for _, s := range svcs {
		if !selects(get(s, "spec", "selector"), podLabels) {
			t.Errorf("Service %v does not select the gateway's pods", get(s, "metadata", "name"))
		}
	}
	if len(byKind(all, "Secret")) == 0 {
		t.Error("no Secret")
	}

	// Every file is listed in the kustomization, and every listed file exists.
	var listed []string
	for i := 0; get(all["kustomization.yaml"][0], "resources", i) != nil; i++ {
		listed = append(listed, get(all["kustomization.yaml"][0], "resources", i).(string))
	}
	for f := range all {
		if f != "kustomization.yaml" && !contains(listed, f) {
			t.Errorf("%s is not in kustomization.yaml", f)
		}
	}
	for _, f := range listed {
		if _, ok := all[f]; !ok {
			t.Errorf("kustomization.yaml lists %s, which is not here", f)
		}
	}

	// The ConfigMap's configuration and policy load in sekisho, with the
	// mounted files put in place.
	cms := byKind(all, "ConfigMap")
	if len(cms) != 1 {
		t.Fatalf("want one ConfigMap, got %d", len(cms))
	}
	data, _ := get(cms[0], "data").(map[string]any)
	text, _ := data["sekisho.yaml"].(string)
	pol, _ := data["policy.csv"].(string)
	if text == "" || pol == "" {
		t.Fatal("the ConfigMap lacks sekisho.yaml or policy.csv")
	}
	cfg := loadWithMounts(t, text, map[string]string{"/etc/sekisho/config/policy.csv": pol})
	if cfg.Store.Driver != "postgres" {
		t.Errorf("store.driver = %q, want postgres", cfg.Store.Driver)
	}
	if _, port, _ := net.SplitHostPort(cfg.Server.MetricsListen); port == "" || port != itoa(ports["metrics"]) {
		t.Errorf("metrics_listen %q does not match the container's metrics port %d", cfg.Server.MetricsListen, ports["metrics"])
	}
	if _, err := policy.New(cfg); err != nil {
		t.Errorf("the ConfigMap's policy does not load: %v", err)
	}
}

func TestComposeExample(t *testing.T) {
	all := docs(t, "../compose")
	services, _ := get(all["compose.yaml"][0], "services").(map[string]any)
	if get(services, "postgres", "image") == nil {
		t.Error("no postgres service")
	}
	replicas := 0
	for name := range services {
		cmd := get(services, name, "command", 0)
		if strings.HasPrefix(name, "sekisho-") && cmd == "serve" {
			replicas++
			if get(services, name, "read_only") != true {
				t.Errorf("%s: read_only is not true", name)
			}
			if get(services, name, "environment", "PGPASSWORD") == nil {
				t.Errorf("%s: no PGPASSWORD", name)
			}
		}
	}
	// The shared fields come from the x-sekisho anchor.
	if replicas < 2 {
		t.Errorf("compose runs %d sekisho replicas, want at least 2", replicas)
	}
	if get(services, "sampleapp") == nil {
		t.Error("no sample app")
	}
	cfg, err := config.Load("../compose/sekisho.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Driver != "postgres" {
		t.Errorf("compose store.driver = %q, want postgres", cfg.Store.Driver)
	}
	if _, err := policy.New(cfg); err != nil {
		t.Errorf("compose policy: %v", err)
	}
}

// loadWithMounts loads a configuration whose paths point at mounted
// files: each /etc/sekisho/... path is rewritten into a temporary
// directory holding real certificates (and the given files).
func loadWithMounts(t *testing.T, text string, files map[string]string) *config.Config {
	t.Helper()
	root := t.TempDir()
	ca, err := certs.Init(filepath.Join(root, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := ca.IssueServer([]string{"zaimu.gw.example.lg.jp"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	put := func(p string, b []byte) {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	put("/etc/sekisho/tls/tls.crt", crt)
	put("/etc/sekisho/tls/tls.key", key)
	put("/etc/sekisho/config/device-ca.pem", ca.CertPEM())
	for p, b := range files {
		put(p, []byte(b))
	}
	text = strings.ReplaceAll(text, "/etc/sekisho/", filepath.Join(root, "etc", "sekisho")+"/")
	text = strings.ReplaceAll(text, "/var/lib/sekisho/", filepath.Join(root, "var")+"/")
	put("sekisho.yaml", []byte(text))
	cfg, err := config.Load(filepath.Join(root, "sekisho.yaml"))
	if err != nil {
		t.Fatalf("the ConfigMap's sekisho.yaml does not load: %v", err)
	}
	return cfg
}

func selects(sel any, labels map[string]any) bool {
	m, ok := sel.(map[string]any)
	if !ok || len(m) == 0 {
		return false
	}
	for k, v := range m {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func itoa(n int) string {
	b, _ := yaml.Marshal(n)
	return strings.TrimSpace(string(b))
}
