package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These run `sluice sandbox run` against the real containerd (make test
// installs and starts it), in the test namespace, with their own state
// directory.

func sandboxFlags(t *testing.T) []string {
	t.Helper()
	cache := "/var/cache/sluice"
	if d := os.Getenv("SLUICE_CACHE"); d != "" {
		cache = d
	}
	flags := []string{"--namespace", "sluice-test", "--state-dir", t.TempDir(), "--cache-dir", cache}
	if code, _, errs := sluice(t, append([]string{"image", "build", "../../images/busybox"}, flags...)...); code != 0 {
		t.Fatalf("image build: exit %d: %s", code, errs)
	}
	return flags
}

// TestSandboxRunSparseOutput is the issue's own check: a 5 GiB sparse file
// under a 1 MiB output cap ends output_limit, and nothing of it is copied.
func TestSandboxRunSparseOutput(t *testing.T) {
	flags := sandboxFlags(t)
	q := filepath.Join(t.TempDir(), "q")
	code, out, errs := sluice(t, append(append([]string{"sandbox", "run"}, flags...),
		"--image", "busybox", "--output-size", "1M", "--out", q, "-o", "json", "--", "sh", "-c", "truncate -s 5G /data/out/a.bin")...)
	if code != exitNo {
		t.Fatalf("exit %d, want %d: %s", code, exitNo, errs)
	}
	var res struct {
		Reason   string `json:"reason"`
		Rejected []struct{ Path, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Reason != "output_limit" || len(res.Rejected) != 1 || res.Rejected[0].Path != "a.bin" {
		t.Errorf("result %+v, want output_limit with a.bin rejected", res)
	}
	filepath.Walk(q, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Size() > 1<<20 {
			t.Errorf("%s is %d bytes", p, fi.Size())
		}
		return nil
	})
}

// TestSandboxRunCodeBomb: a small archive that unpacks past the code
// bundle limit is an input error (exit 2) and leaves nothing.
func TestSandboxRunCodeBomb(t *testing.T) {
	flags := sandboxFlags(t)
	bomb := filepath.Join(t.TempDir(), "code.tar.gz")
	f, err := os.Create(bomb)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "main.py", Typeflag: tar.TypeReg, Mode: 0o644, Size: 100 << 20})
	zeros := make([]byte, 1<<20)
	for range 100 {
		tw.Write(zeros)
	}
	tw.Close()
	gz.Close()
	f.Close()
	q := filepath.Join(t.TempDir(), "q")
	code, _, errs := sluice(t, append(append([]string{"sandbox", "run"}, flags...),
		"--image", "busybox", "--code", bomb, "--out", q, "--", "true")...)
	if code != exitUsage || !strings.Contains(errs, "code bundle limit") {
		t.Fatalf("exit %d (%s), want %d naming the code bundle limit", code, errs, exitUsage)
	}
	state := flags[3]
	if left, _ := os.ReadDir(filepath.Join(state, "jobs")); len(left) != 0 {
		t.Errorf("workspace left behind: %v", left)
	}
	if _, err := os.Stat(q); err == nil {
		t.Error("an output directory was created")
	}
}
