// Package docs_test runs every command of every page in docs/, so the
// pages cannot drift from the product. The pages are found with
// filepath.Glob("*.md"): a new page is covered without being listed.
//
// # Fences
//
// Every fence of a page carries a language; an unlabelled ``` fence fails
// TestFences, so a command cannot hide in one:
//
//   - sh: commands a reader types. TestCommands runs them (below).
//   - text: output shown for comparison, diagrams, and commands for tools
//     the test does not have (Docker); a text fence must not hold a
//     sekisho command. With the word output, the fence is the output of
//     the sh block before it: every line of it (but those with "…") must
//     be a line of what that block printed, spaces at the ends aside.
//   - yaml: a sekisho.yaml, whole or a fragment. TestYAMLFences merges each
//     into a small valid base configuration and checks it with the
//     configuration's own parser (config.Parse), so a misspelt key or a
//     bad value fails. A YAML file of another kind (policy cases) is
//     written by an sh block with a heredoc instead, where it is used.
//   - csv: an excerpt of a policy file, with the word excerpt=FILE: when
//     TestCommands reaches the fence, every rule line of it must be a
//     line of FILE in the page's directory (spaces around commas do not
//     count). A policy a reader writes is written by an sh heredoc.
//   - python: only the independent audit verifier of audit.md, after the
//     marker <!-- independent-verifier -->; audit.TestIndependentVerifierInDocs
//     runs it against a real trail.
//   - powershell: Windows device enrollment. It cannot run here; TestFences
//     checks that such a fence is not empty and names a .p12 file.
//   - go: code for developers; json: data shown.
//
// A fence may be indented (inside a list item); its lines lose the
// fence's indentation.
//
// # What runs
//
// Each page's ```sh blocks run in order, each as one bash script with
// errexit and pipefail, in a fresh directory per page (blocks share the
// directory and the background processes, not shell variables). A failing
// command fails the test with the page and line of the command. The info
// string after "sh" may carry words:
//
//   - background: start the block and leave it running (sekisho serve,
//     the sample app) until the page's last block has run; it is then
//     stopped with SIGTERM.
//   - ready=HOST:PORT: with background, wait until HOST:PORT accepts
//     connections before the next block.
//   - exit=N: the block must exit with N (a command shown failing).
//   - stop: stop the page's background commands (as systemctl stop
//     would) before running the block; a later background block starts
//     the gateway again.
//   - env=NAME: run only when the environment variable NAME is set;
//     skipped otherwise, and a failure when CI=true. SEKISHO_DSN is set
//     from SEKISHO_TEST_POSTGRES (the PostgreSQL commands).
//   - src: run in the repository ($SEKISHO_SRC) instead of the page's
//     directory, as a developer runs go test (the benchmark commands).
//
// The ports 8443, 9090, 9001 and 8080 in the blocks are replaced by free ports
// so that the test runs beside other gateways on the same machine. A
// benchmark's "-benchtime X" is replaced by "-benchtime 1x": the test
// checks that the documented benchmark commands run and find benchmarks
// (a block with -bench must print "Benchmark"), not the figures, which the
// pages report from their own runs; for the same reason scripts/bench's
// "-instructions N" becomes "-instructions 50".
//
// TestMain builds ./cmd/sekisho and the sample app once and puts them in
// PATH, after $HOME/bin; HOME is a directory of the page's own and
// SEKISHO_SRC names the repository, as the guide asks a reader to set it.
package docs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sekisho/sekisho/config"
)

// pages returns every page of docs/, sorted by name.
func pages(t *testing.T) []string {
	t.Helper()
	ps, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) < 15 {
		t.Fatalf("found %d pages in docs/: %v", len(ps), ps)
	}
	return ps
}

var (
	binDir   string // holds sekisho and sampleapp
	repoRoot string
	goEnv    []string // GOCACHE etc. of the caller, kept when HOME changes
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if repoRoot, err = filepath.Abs(".."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "sekisho-docs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "making a directory for the binaries:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env:", err)
		return 1
	}
	vals := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		if i < len(vals) {
			goEnv = append(goEnv, k+"="+vals[i])
		}
	}
	for name, pkg := range map[string]string{"sekisho": "./cmd/sekisho", "sampleapp": "./examples/apps/cmd/sampleapp"} {
		// The same flags as the guide's installation commands, so that
		// those find every package in the build cache.
		build := exec.Command(gobin, "build", "-trimpath", "-o", filepath.Join(binDir, name), pkg)
		build.Dir = repoRoot
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// block is one fenced code block of a page.
type block struct {
	page  string
	line  int    // line of the opening fence
	lang  string // the first word of the info string
	text  string
	attrs map[string]string // the other words: name or name=value
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.page, b.line) }

var fenceRE = regexp.MustCompile("^([ \\t]*)```(.*)$")

// fences returns every fenced block of a page.
func fences(t *testing.T, page string) []block {
	t.Helper()
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out    []block
		cur    *block
		indent string
		buf    strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil:
			if m := fenceRE.FindStringSubmatch(line); m != nil {
				indent = m[1]
				cur = &block{page: page, line: n, attrs: map[string]string{}}
				words := strings.Fields(m[2])
				if len(words) > 0 {
					cur.lang = words[0]
					for _, w := range words[1:] {
						k, v, _ := strings.Cut(w, "=")
						cur.attrs[k] = v
					}
				}
				buf.Reset()
			}
		case strings.TrimSpace(line) == "```":
			cur.text = buf.String()
			out = append(out, *cur)
			cur = nil
		default:
			buf.WriteString(strings.TrimPrefix(line, indent))
			buf.WriteByte('\n')
		}
	}
	if cur != nil {
		t.Fatalf("%s: the fence at line %d is never closed", page, cur.line)
	}
	return out
}

// blocks returns the ```sh blocks of a page.
func blocks(t *testing.T, page string) []block {
	t.Helper()
	var out []block
	for _, b := range fences(t, page) {
		if b.lang == "sh" {
			out = append(out, b)
		}
	}
	return out
}

// freePort returns a port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// session runs one page's blocks.
type session struct {
	t    *testing.T
	dir  string
	env  []string
	port map[string]string
	bg   []bgProc
	last string // the output of the last sh block run to its end
	// skipped: the last sh block was skipped (env=), so there is no
	// output to compare with.
	skipped bool
}

// bgProc is a background block's process and the result of its Wait.
type bgProc struct {
	cmd  *exec.Cmd
	done chan error
}

func newSession(t *testing.T) *session {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	work := filepath.Join(dir, "work")
	for _, d := range []string{filepath.Join(home, "bin"), work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"HOME=" + home,
		"PATH=" + filepath.Join(home, "bin") + string(os.PathListSeparator) + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"SEKISHO_SRC=" + repoRoot,
	}
	env = append(env, goEnv...)
	for _, k := range []string{"TMPDIR", "GOFLAGS", "GOTOOLCHAIN", "GOPROXY", "CI"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if dsn := os.Getenv("SEKISHO_TEST_POSTGRES"); dsn != "" {
		env = append(env, "SEKISHO_DSN="+dsn)
	}
	s := &session{t: t, dir: work, env: env, port: map[string]string{}}
	for _, p := range []string{"8443", "9090", "9001", "8080"} {
		s.port[p] = freePort(t)
	}
	t.Cleanup(s.stop)
	return s
}

// ports replaces the blocks' ports by the free ones in one pass: one at a
// time, a free port that happens to contain another block port (34678
// holds 4678, 39001 holds 9001) would be rewritten again.
func (s *session) ports(text string) string {
	pairs := make([]string, 0, 2*len(s.port))
	for from, to := range s.port {
		pairs = append(pairs, from, to)
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// hasEnv reports whether the blocks' environment sets name.
func (s *session) hasEnv(name string) bool {
	for _, kv := range s.env {
		if k, v, _ := strings.Cut(kv, "="); k == name && v != "" {
			return true
		}
	}
	return false
}

// script is the block as a bash script whose ERR trap names the line.
func (s *session) script(b block) string {
	text := s.ports(b.text)
	text = benchtimeRE.ReplaceAllString(text, "-benchtime 1x")
	text = instructionsRE.ReplaceAllString(text, "-instructions 50")
	// Line 1 is the trap; block line k is script line k+1.
	return "trap 'echo \"docs-test-failed-at-line $LINENO\" >&2' ERR\n" + text
}

// instructionsRE finds the request count of scripts/bench's instruction
// count under callgrind, which the test shortens likewise.
var instructionsRE = regexp.MustCompile(`-instructions[ =]\d+`)

// benchtimeRE finds a benchmark's run time, which the test shortens.
var benchtimeRE = regexp.MustCompile(`-benchtime[ =]\S+`)

var failedAtRE = regexp.MustCompile(`docs-test-failed-at-line (\d+)`)

func (s *session) command(ctx context.Context, b block) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-e", "-u", "-o", "pipefail", "-c", s.script(b))
	cmd.Dir = s.dir
	if _, ok := b.attrs["src"]; ok {
		cmd.Dir = repoRoot
	}
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// lineOf maps a failure report back to the page line of the command.
func lineOf(b block, output string) (int, string) {
	lines := strings.Split(b.text, "\n")
	if m := failedAtRE.FindAllStringSubmatch(output, -1); m != nil {
		n, _ := strconv.Atoi(m[len(m)-1][1])
		k := n - 1 // block line, 1-based
		if k >= 1 && k <= len(lines) {
			return b.line + k, strings.TrimSpace(lines[k-1])
		}
	}
	return b.line, "(the block at this line)"
}

func (s *session) run(b block) {
	t := s.t
	if name, ok := b.attrs["env"]; ok && !s.hasEnv(name) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: needs %s, which is not set (CI=true)", b, name)
		}
		t.Logf("%s: skipped, %s is not set", b, name)
		s.skipped = true
		return
	}
	s.skipped = false
	if _, ok := b.attrs["stop"]; ok {
		s.stop()
	}
	if _, ok := b.attrs["background"]; ok {
		s.background(b)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.command(ctx, b)
	out, err := cmd.CombinedOutput()
	want := 0
	if v, ok := b.attrs["exit"]; ok {
		want, _ = strconv.Atoi(v)
	}
	got := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		got = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", b, err)
	}
	if got != want {
		line, command := lineOf(b, string(out))
		if want != 0 {
			line, command = b.line, "(the block at this line)"
		}
		t.Fatalf("%s:%d: exit %d, want %d: %s\n%s", b.page, line, got, want, command, out)
	}
	if strings.Contains(b.text, " -bench ") && !bytes.Contains(out, []byte("\nBenchmark")) {
		t.Fatalf("%s: the block runs benchmarks, but none ran (a -bench pattern that matches nothing?)\n%s", b, out)
	}
	s.last = string(out)
	t.Logf("%s ok\n%s", b, out)
}

// output checks that a text fence marked output shows lines the sh block
// before it printed.
func (s *session) output(b block) {
	if s.skipped {
		s.t.Logf("%s: not compared, the block before was skipped", b)
		return
	}
	have := map[string]bool{}
	for _, l := range strings.Split(s.last, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	for i, l := range strings.Split(strings.TrimRight(b.text, "\n"), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "…") {
			continue
		}
		if !have[l] {
			s.t.Errorf("%s:%d: the block before does not print this line: %q\n(it printed:)\n%s", b.page, b.line+1+i, l, s.last)
		}
	}
}

func (s *session) background(b block) {
	t := s.t
	cmd := s.command(context.Background(), b)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: starting: %v", b, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); close(done) }()
	s.bg = append(s.bg, bgProc{cmd, done})
	addr := b.attrs["ready"]
	if addr == "" {
		return
	}
	addr = s.ports(addr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("%s: the background command ended before %s was ready: %v\n%s", b, addr, err, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not ready after 20s\n%s", b, addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the page's background commands: SIGTERM to each process
// group, SIGKILL after 10 s.
func (s *session) stop() {
	defer func() { s.bg = nil }()
	for _, p := range s.bg {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	for _, p := range s.bg {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

// TestCommands runs every page's commands.
func TestCommands(t *testing.T) {
	// The pages use these tools as a city's administrator would.
	var missing []string
	for _, tool := range []string{"bash", "curl", "jq", "openssl", "sqlite3", "tar", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the documented commands need %s: apt-get install -y %s", strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	// audit.md runs its independent verifier, which needs this module.
	if out, err := exec.Command("python3", "-c", "import cryptography").CombinedOutput(); err != nil {
		t.Fatalf("audit.md's verifier needs the Python cryptography package (apt-get install -y python3-cryptography): %v\n%s", err, out)
	}
	total := 0
	for _, page := range pages(t) {
		bs := fences(t, page)
		for _, b := range bs {
			if b.lang == "sh" {
				total++
			}
		}
		t.Run(page, func(t *testing.T) {
			s := newSession(t)
			for _, b := range bs {
				switch {
				case b.lang == "sh":
					s.run(b)
				case b.attrs["excerpt"] != "":
					s.excerpt(b)
				case b.lang == "text" && b.attrs["output"] == "" && hasWord(b, "output"):
					s.output(b)
				}
			}
		})
	}
	t.Logf("ran %d sh blocks", total)
}

// excerpt checks that every rule line of a csv fence is a line of the
// file it names in the page's directory.
func (s *session) excerpt(b block) {
	t := s.t
	name := b.attrs["excerpt"]
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		t.Fatalf("%s: the excerpt of %s: %v", b, name, err)
	}
	rules, missing := missingRules(b.text, string(data))
	for _, i := range missing {
		t.Errorf("%s:%d: %q is not a line of %s", b.page, b.line+1+i, strings.TrimSpace(strings.Split(b.text, "\n")[i]), name)
	}
	if rules == 0 {
		t.Errorf("%s: the excerpt of %s has no rule", b, name)
	}
}

// missingRules returns how many rule lines excerpt has and the indexes
// of those that are not lines of file.
func missingRules(excerpt, file string) (rules int, missing []int) {
	have := map[string]bool{}
	for _, l := range strings.Split(file, "\n") {
		have[normalizeRule(l)] = true
	}
	for i, l := range strings.Split(excerpt, "\n") {
		r := normalizeRule(l)
		if r == "" {
			continue
		}
		rules++
		if !have[r] {
			missing = append(missing, i)
		}
	}
	return rules, missing
}

var spacesRE = regexp.MustCompile(`\s+`)

// normalizeRule drops a policy line's comment and the spaces around its
// fields; "" for a blank or comment line.
func normalizeRule(l string) string {
	l, _, _ = strings.Cut(l, "#")
	fields := strings.Split(l, ",")
	for i, f := range fields {
		fields[i] = spacesRE.ReplaceAllString(strings.TrimSpace(f), " ")
	}
	r := strings.Join(fields, ",")
	if r == "" || r == strings.Repeat(",", len(fields)-1) {
		return ""
	}
	return r
}

func hasWord(b block, w string) bool {
	_, ok := b.attrs[w]
	return ok
}

// languages are the fence labels a page may use (see the package comment).
var languages = map[string]bool{
	"sh": true, "text": true, "yaml": true, "csv": true,
	"python": true, "powershell": true, "go": true, "json": true,
}

// TestFences keeps the pages honest: every fence is labelled with a
// language the test knows, so no command is left in a fence nothing runs,
// and the fences the test cannot run are checked as far as it can.
func TestFences(t *testing.T) {
	least := map[string]int{"guide.md": 8, "pilot.md": 5, "operations.md": 8}
	ourCommand := regexp.MustCompile(`(?m)^\s*(?:\$ )?sekisho [a-z]`)
	for _, page := range pages(t) {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		sh := 0
		for _, b := range fences(t, page) {
			switch {
			case b.lang == "":
				t.Errorf("%s: a fence without a language; write ```sh for commands (the test runs them) or ```text, ```yaml, ```csv… for the rest", b)
				continue
			case !languages[b.lang]:
				t.Errorf("%s: the fence language %q is not one the test knows (sh, text, yaml, csv, python, powershell, go, json)", b, b.lang)
				continue
			case b.lang == "sh":
				sh++
				for w := range b.attrs {
					if !map[string]bool{"background": true, "ready": true, "exit": true, "stop": true, "env": true, "src": true}[w] {
						t.Errorf("%s: unknown word %q after sh", b, w)
					}
				}
			case hasWord(b, "output") && b.lang != "text":
				t.Errorf("%s: output is a word for text fences", b)
			case b.lang == "csv" && b.attrs["excerpt"] == "":
				t.Errorf("%s: a csv fence must name the file it is an excerpt of (```csv excerpt=policy.csv); a policy the reader writes goes in an sh heredoc", b)
			case b.lang == "python":
				if b.line < 2 || strings.TrimSpace(lines[b.line-2]) != "<!-- independent-verifier -->" {
					t.Errorf("%s: a python fence that no test runs (only the independent verifier, after <!-- independent-verifier -->, is run by audit.TestIndependentVerifierInDocs)", b)
				}
			case b.lang == "powershell":
				if strings.TrimSpace(b.text) == "" || !strings.Contains(b.text, ".p12") {
					t.Errorf("%s: an empty powershell fence, or one that does not import a .p12", b)
				}
			}
			if b.lang != "sh" && b.lang != "go" {
				if loc := ourCommand.FindStringIndex(b.text); loc != nil {
					t.Errorf("%s:%d: a sekisho command in a ```%s fence: the test would not run it", page, b.line+1+strings.Count(b.text[:loc[0]], "\n"), b.lang)
				}
			}
		}
		if sh < least[page] {
			t.Errorf("%s has %d ```sh blocks, want at least %d", page, sh, least[page])
		}
	}
}

// baseConfig is a small valid configuration that TestYAMLFences merges
// each yaml fence into.
const baseConfig = `
server:
  listen: ":8443"
  tls: {cert: certs/server.pem, key: certs/server-key.pem}
  client_ca: [certs/device-ca.pem]
store: {driver: sqlite, dsn: data/sekisho.db}
webauthn: {rp_id: gw.example.lg.jp, rp_name: test}
zones:
  chonai: [10.1.0.0/16]
  telework: [10.200.0.0/16]
  mynumber: [10.9.0.0/16]
routes:
  - {name: zaimu, host: zaimu.gw.example.lg.jp, upstream: "http://10.2.0.10:8080", segment: lgwan, class: "2"}
policy: {file: policy.csv}
audit: {dir: data/audit}
`

// merge returns base with over laid on it: mappings merge key by key,
// anything else in over replaces what base has.
func merge(base, over any) any {
	b, ok1 := base.(map[string]any)
	o, ok2 := over.(map[string]any)
	if !ok1 || !ok2 {
		return over
	}
	out := map[string]any{}
	for k, v := range b {
		out[k] = v
	}
	for k, v := range o {
		out[k] = merge(b[k], v)
	}
	return out
}

// TestYAMLFences checks every yaml fence of the pages with the
// configuration parser the gateway uses.
func TestYAMLFences(t *testing.T) {
	var base map[string]any
	if err := yaml.Unmarshal([]byte(baseConfig), &base); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("base.yaml", []byte(baseConfig)); err != nil {
		t.Fatalf("the base configuration is not valid: %v", err)
	}
	n := 0
	for _, page := range pages(t) {
		for _, b := range fences(t, page) {
			if b.lang != "yaml" {
				continue
			}
			n++
			var frag map[string]any
			if err := yaml.Unmarshal([]byte(b.text), &frag); err != nil || frag == nil {
				t.Errorf("%s: not a YAML mapping: %v", b, err)
				continue
			}
			data, err := yaml.Marshal(merge(base, frag))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := config.Parse(b.String(), data); err != nil {
				t.Errorf("%s: not a valid part of sekisho.yaml (YAML of another kind goes in an sh heredoc where it is used); line numbers below count in the fence merged into the base configuration:\n%v", b, err)
			}
		}
	}
	if n < 5 {
		t.Errorf("checked %d yaml fences; the fence format changed?", n)
	}
	t.Logf("checked %d yaml fences", n)
}

var (
	// "`dir/file_test.go` `TestA`, `TestB`" in guideline-mapping.md.
	evidenceRE = regexp.MustCompile("`([a-z0-9_/]+_test\\.go)`((?:,? `(?:Test|Fuzz)[A-Za-z0-9_]+`)+)")
	testNameRE = regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)`")
	// "`examples/m/cases.yaml` (「case name」)".
	caseRE = regexp.MustCompile("`(examples/[a-z-]+/cases\\.yaml)` \\(「([^」]+)」\\)")
)

// TestMappingEvidenceExists checks that every test and case the guideline
// mapping cites as evidence exists where the page says, so the table
// cannot point auditors at something renamed or removed.
func TestMappingEvidenceExists(t *testing.T) {
	data, err := os.ReadFile("guideline-mapping.md")
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	tests, cases := 0, 0
	for _, m := range evidenceRE.FindAllStringSubmatch(page, -1) {
		src, err := os.ReadFile(filepath.Join(repoRoot, m[1]))
		if err != nil {
			t.Errorf("guideline-mapping.md cites %s: %v", m[1], err)
			continue
		}
		for _, n := range testNameRE.FindAllStringSubmatch(m[2], -1) {
			tests++
			if !bytes.Contains(src, []byte("func "+n[1]+"(")) {
				t.Errorf("guideline-mapping.md cites %s in %s, which does not define it", n[1], m[1])
			}
		}
	}
	for _, m := range caseRE.FindAllStringSubmatch(page, -1) {
		cases++
		src, err := os.ReadFile(filepath.Join(repoRoot, m[1]))
		if err != nil {
			t.Errorf("guideline-mapping.md cites %s: %v", m[1], err)
			continue
		}
		if !bytes.Contains(src, []byte(m[2])) {
			t.Errorf("guideline-mapping.md cites the case %q, which %s does not have", m[2], m[1])
		}
	}
	if tests < 20 || cases < 5 {
		t.Errorf("found %d cited tests and %d cited cases; the page's citation format changed?", tests, cases)
	}
	t.Logf("checked %d cited tests and %d cited cases", tests, cases)
}

// linkRE finds the targets of markdown links.
var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// othersPages are pages other engineers write; a link to one that does
// not exist yet is logged, not failed.
var othersPages = map[string]bool{
	"monitoring.md": true, "directory.md": true, "scale-out.md": true,
	"threat-model.md": true, "performance.md": true,
}

// TestLinks checks that every relative link of these pages names a file
// or directory that exists.
func TestLinks(t *testing.T) {
	for _, page := range pages(t) {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(string(data), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(target); err != nil {
				if othersPages[target] {
					t.Logf("%s links to %s, not written yet", page, target)
					continue
				}
				t.Errorf("%s links to %s: %v", page, target, err)
			}
		}
	}
}

// TestFailureNamesLine checks the harness itself: a failing command is
// reported with the page line it is written on, and the port rewrite and
// exit= expectation work.
func TestFailureNamesLine(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "page.md")
	text := "# t\n\n```sh\ntrue\necho 8443 > port.txt\nfalse\necho never\n```\n\n```sh exit=3\nexit 3\n```\n"
	if err := os.WriteFile(page, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	bs := blocks(t, page)
	if len(bs) != 2 || bs[0].line != 3 || bs[1].attrs["exit"] != "3" {
		t.Fatalf("blocks = %+v", bs)
	}
	s := newSession(t)
	out, err := s.command(context.Background(), bs[0]).CombinedOutput()
	if err == nil {
		t.Fatal("a block with false succeeded")
	}
	line, command := lineOf(bs[0], string(out))
	if line != 6 || command != "false" {
		t.Errorf("failure reported at %d %q, want line 6 \"false\"", line, command)
	}
	port, err := os.ReadFile(filepath.Join(s.dir, "port.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(port)); got != s.port["8443"] || got == "8443" {
		t.Errorf("port 8443 became %q, want the free port %s", got, s.port["8443"])
	}
	s.run(bs[1]) // fails the test unless the exit code is 3
}

// TestNoNegatedCommands: under errexit bash ignores the status of a
// command negated with "!", so a "! cmd" line in a block asserts nothing
// unless it is the block's last line. Pages write such checks with test.
func TestNoNegatedCommands(t *testing.T) {
	for _, page := range pages(t) {
		for _, b := range blocks(t, page) {
			lines := strings.Split(strings.TrimRight(b.text, "\n"), "\n")
			for i, l := range lines[:len(lines)-1] {
				if strings.HasPrefix(strings.TrimSpace(l), "! ") {
					t.Errorf("%s:%d: \"! command\" before the block's last line is not checked under errexit; use test", page, b.line+1+i)
				}
			}
		}
	}
}

// TestFenceParsing checks the harness's reading of fences: labels and
// words, indented fences, and the excerpt comparison.
func TestFenceParsing(t *testing.T) {
	page := filepath.Join(t.TempDir(), "page.md")
	text := "# t\n\n```\nsekisho serve\n```\n\n1. item\n\n   ```sh exit=2\n   echo a\n   ```\n\n```csv excerpt=policy.csv\nallow, *, route:a, read   # c\n```\n"
	if err := os.WriteFile(page, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := fences(t, page)
	if len(fs) != 3 {
		t.Fatalf("fences = %+v", fs)
	}
	if fs[0].lang != "" || fs[0].line != 3 {
		t.Errorf("unlabelled fence read as %+v", fs[0])
	}
	if fs[1].lang != "sh" || fs[1].attrs["exit"] != "2" || fs[1].text != "echo a\n" || fs[1].line != 9 {
		t.Errorf("indented fence read as %+v", fs[1])
	}
	if fs[2].attrs["excerpt"] != "policy.csv" {
		t.Errorf("csv fence read as %+v", fs[2])
	}
	file := "# policy\nallow,*,route:a,read\ndeny, *, route:b, *\n"
	if n, miss := missingRules(fs[2].text, file); n != 1 || len(miss) != 0 {
		t.Errorf("missingRules(excerpt of a line the file has) = %d, %v", n, miss)
	}
	if n, miss := missingRules("# c\nallow, *, route:a, write\ndeny, *, route:b, *\n", file); n != 2 || len(miss) != 1 || miss[0] != 1 {
		t.Errorf("missingRules(a changed line) = %d, %v; want 2, [1]", n, miss)
	}
}

// TestPortsOnePass: a free port that contains another block port is not
// rewritten again (the cause of a flake: "127.0.0.1:346783").
func TestPortsOnePass(t *testing.T) {
	s := &session{port: map[string]string{"8443": "39001", "9001": "34567", "8080": "38080", "9090": "40000"}}
	for range 20 { // the map's order varies from run to run
		if got, want := s.ports("8443 9001 8080 9090"), "39001 34567 38080 40000"; got != want {
			t.Fatalf("ports: %q, want %q", got, want)
		}
	}
}
