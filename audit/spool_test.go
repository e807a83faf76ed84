package audit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
)

// While a gateway holds the trail, a tool's records go to the spool; the
// gateway drains them into the chain, and the trail still verifies.
func TestSpoolWhileLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Audit{Dir: dir, Key: filepath.Join(dir, "audit.key"), CheckpointEvery: 100, RotateSize: 1 << 30}
	gw, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Append(&Record{Event: EventAccess, User: "sato", Decision: DecisionAllow}); err != nil {
		t.Fatal(err)
	}

	w, spooled, err := OpenWriter(cfg)
	if err != nil || !spooled {
		t.Fatalf("OpenWriter while locked: spooled=%v err=%v", spooled, err)
	}
	at := time.Date(2027, 3, 31, 9, 0, 0, 0, time.UTC)
	for _, target := range []string{"tanaka", "suzuki"} {
		if err := w.Append(&Record{Time: at, Event: EventAdmin, User: "cli:root", Action: "user_change", Target: target, Detail: "財務課 → 福祉課"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(SpoolDir(dir), "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("spool files = %v", files)
	}

	n, err := gw.DrainSpool()
	if err != nil || n != 2 {
		t.Fatalf("DrainSpool = %d, %v", n, err)
	}
	if files, _ := filepath.Glob(filepath.Join(SpoolDir(dir), "*")); len(files) != 0 {
		t.Fatalf("spool not emptied: %v", files)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadPublicKeys(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(dir, keys)
	if err != nil || !res.OK() {
		t.Fatalf("verify after drain: %+v %v", res, err)
	}
	recs, _, err := QueryAll(dir, Filter{User: "cli:root"})
	if err != nil || len(recs) != 2 || recs[0].Target != "tanaka" || !recs[0].Time.Equal(at) || recs[1].Seq != recs[0].Seq+1 {
		t.Fatalf("drained records = %+v, %v", recs, err)
	}

	// With no gateway running, the writer is the trail itself.
	w, spooled, err = OpenWriter(cfg)
	if err != nil || spooled {
		t.Fatalf("OpenWriter with the trail free: spooled=%v err=%v", spooled, err)
	}
	w.Close()
}

func TestSpoolBadFileKept(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Audit{Dir: dir, Key: filepath.Join(dir, "audit.key"), CheckpointEvery: 100, RotateSize: 1 << 30}
	gw, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	os.MkdirAll(SpoolDir(dir), 0o700)
	bad := filepath.Join(SpoolDir(dir), "00000000000000000001-1.jsonl")
	os.WriteFile(bad, []byte("{not json\n"), 0o600)
	if _, err := gw.DrainSpool(); err == nil {
		t.Fatal("a malformed spool file was accepted")
	}
	if _, err := os.Stat(bad + ".bad"); errors.Is(err, os.ErrNotExist) {
		t.Fatal("the malformed spool file was not kept as .bad")
	}
}
