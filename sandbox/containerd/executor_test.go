package containerd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"

	"github.com/sluicehq/sluice/images"
	"github.com/sluicehq/sluice/sandbox"
	ctrd "github.com/sluicehq/sluice/sandbox/containerd"
)

// These tests run against the real containerd and runc (make test installs
// and starts them). They use their own containerd namespace.
const testNamespace = "sluice-test"

func address() string {
	if a := os.Getenv("SLUICE_CONTAINERD_ADDRESS"); a != "" {
		return a
	}
	return ctrd.DefaultAddress
}

func cacheDir() string {
	if d := os.Getenv("SLUICE_CACHE"); d != "" {
		return filepath.Join(d, "images")
	}
	return "/var/cache/sluice/images"
}

func newExecutor(t *testing.T) *ctrd.Executor {
	t.Helper()
	opts := []ctrd.Option{ctrd.WithNamespace(testNamespace)}
	if runsc := ctrd.LookRunsc(filepath.Dir(cacheDir())); runsc != "" {
		// The wrapper must outlive every job that names it: not a TempDir.
		opts = append(opts, ctrd.WithRunsc(runsc, "/var/lib/sluice-test/bin"))
	}
	e, err := ctrd.New(context.Background(), address(), opts...)
	if err != nil {
		t.Fatalf("containerd is required for this test (make test installs and starts it): %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

var imageOnce sync.Map

// ensureImage builds (or finds cached) and imports images/<name>.
func ensureImage(t *testing.T, e *ctrd.Executor, name string) {
	t.Helper()
	if _, done := imageOnce.Load(name); done {
		return
	}
	ctx := namespaces.WithNamespace(context.Background(), e.Namespace())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := images.Ensure(ctx, e.Client(), filepath.Join("..", "..", "images", name), cacheDir(), "overlayfs", log); err != nil {
		t.Fatalf("image %s: %v", name, err)
	}
	imageOnce.Store(name, true)
}

func newRunner(t *testing.T, e *ctrd.Executor, stateDir string) *sandbox.Runner {
	t.Helper()
	r, err := sandbox.NewRunner(e, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func run(t *testing.T, e *ctrd.Executor, job sandbox.Job) (*sandbox.Result, string) {
	t.Helper()
	ensureImage(t, e, job.Image)
	q := filepath.Join(t.TempDir(), "quarantine")
	res, err := newRunner(t, e, t.TempDir()).Run(context.Background(), job, q)
	if err != nil {
		t.Fatalf("run %s: %v", job.ID, err)
	}
	assertGone(t, e, job.ID)
	return res, q
}

// readLog reads a log file of a result (res.Stdout or res.Stderr) from its
// quarantine directory.
func readLog(t *testing.T, q, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(q, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertGone checks that no container, task or snapshot of the job is left.
func assertGone(t *testing.T, e *ctrd.Executor, id string) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), e.Namespace())
	if _, err := e.Client().LoadContainer(ctx, id); err == nil {
		t.Errorf("container %s left behind", id)
	}
	if _, err := e.Client().SnapshotService("overlayfs").Stat(ctx, id); err == nil {
		t.Errorf("snapshot %s left behind", id)
	}
	tasks, err := e.Client().TaskService().List(ctx, nil)
	if err == nil {
		for _, tk := range tasks.Tasks {
			if tk.ID == id {
				t.Errorf("task %s left behind", id)
			}
		}
	}
	ids, _ := e.List(context.Background())
	for _, i := range ids {
		if i == id {
			t.Errorf("job %s still listed", id)
		}
	}
}

// isolationScript prints one line per property, checked from inside.
const isolationScript = `
echo "uid=$(id -u) gid=$(id -g)"
grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
echo "ifaces=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); printf "%s ", $1 }' /proc/net/dev)"
if touch /rootfs-write 2>/dev/null; then echo "root=writable"; else echo "root=readonly"; fi
if touch /data/in/x 2>/dev/null; then echo "in=writable"; else echo "in=readonly"; fi
if touch /code/x 2>/dev/null; then echo "code=writable"; else echo "code=readonly"; fi
if echo ok > /data/out/ok.txt; then echo "out=writable"; fi
if echo ok > /tmp/t; then echo "tmp=writable"; fi
echo "kcore=$(wc -c < /proc/kcore 2>/dev/null || echo unreadable)"
echo "hostname=$(hostname)"
`

func checkIsolation(t *testing.T, out string, gvisor bool) {
	t.Helper()
	if !gvisor {
		// gVisor's /proc does not report these; its own kernel enforces them.
		for _, w := range []string{"NoNewPrivs:\t1", "Seccomp:\t2"} {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("isolation: missing %q in:\n%s", w, out)
			}
		}
	}
	var uid, gid uint32
	if _, err := fmt.Sscanf(out, "uid=%d gid=%d", &uid, &gid); err != nil || uid < sandbox.MinJobUID || gid != uid {
		t.Errorf("isolation: want a job uid from the range (>= %d) as uid and gid, got %q", sandbox.MinJobUID, strings.SplitN(out, "\n", 2)[0])
	}
	want := []string{
		"CapEff:\t0000000000000000",
		"CapPrm:\t0000000000000000",
		"CapBnd:\t0000000000000000",
		"ifaces=lo ",
		"root=readonly",
		"in=readonly",
		"code=readonly",
		"out=writable",
		"tmp=writable",
		"hostname=sandbox",
	}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("isolation: missing %q in:\n%s", w, out)
		}
	}
	if !strings.Contains(out, "kcore=0\n") && !strings.Contains(out, "kcore=unreadable\n") {
		t.Errorf("/proc/kcore is not masked:\n%s", out)
	}
}

func TestIsolationRunc(t *testing.T) {
	e := newExecutor(t)
	code := t.TempDir()
	os.WriteFile(filepath.Join(code, "check.sh"), []byte(isolationScript), 0o644)
	res, q := run(t, e, sandbox.Job{ID: "iso-runc", Image: "busybox", Runtime: sandbox.RuntimeRunc, Code: code, Command: []string{"sh", "/code/check.sh"}})
	if res.Reason != sandbox.ReasonExited || res.ExitCode != 0 {
		t.Fatalf("job ended %s/%d: %s", res.Reason, res.ExitCode, res.Error)
	}
	checkIsolation(t, readLog(t, q, res.Stdout), false)
	if len(res.Outputs) != 1 || res.Outputs[0].Path != "ok.txt" {
		t.Errorf("outputs: %+v", res.Outputs)
	}
}

func TestIsolationGVisor(t *testing.T) {
	e := newExecutor(t)
	if !e.GVisorAvailable() {
		t.Fatal("runsc is required (make test builds it into /var/cache/sluice/bin)")
	}
	code := t.TempDir()
	os.WriteFile(filepath.Join(code, "check.sh"), []byte(isolationScript), 0o644)
	res, q := run(t, e, sandbox.Job{ID: "iso-gvisor", Image: "busybox", Runtime: sandbox.RuntimeGVisor, Code: code,
		Command: []string{"sh", "/code/check.sh"}}) // pids default to sandbox.GVisorMinPids
	if res.Reason != sandbox.ReasonExited || res.ExitCode != 0 {
		t.Fatalf("job ended %s/%d: %s %s", res.Reason, res.ExitCode, res.Error, readLog(t, q, res.Stderr))
	}
	checkIsolation(t, readLog(t, q, res.Stdout), true)
}

func TestMemoryHogIsOOM(t *testing.T) {
	e := newExecutor(t)
	res, _ := run(t, e, sandbox.Job{ID: "oom", Image: "busybox", Runtime: sandbox.RuntimeRunc,
		Command: []string{"tail", "/dev/zero"}, Limits: sandbox.Limits{Memory: 32 << 20, Timeout: time.Minute}})
	if res.Reason != sandbox.ReasonOOM {
		t.Errorf("reason %s (exit %d), want oom", res.Reason, res.ExitCode)
	}
}

func TestForkBombIsContained(t *testing.T) {
	e := newExecutor(t)
	res, _ := run(t, e, sandbox.Job{ID: "forkbomb", Image: "busybox", Runtime: sandbox.RuntimeRunc,
		Command: []string{"sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 60"},
		Limits:  sandbox.Limits{Pids: 64, Timeout: 3 * time.Second}})
	if res.Reason != sandbox.ReasonTimeout {
		t.Errorf("reason %s, want timeout (the bomb runs until killed)", res.Reason)
	}
	// The host still forks.
	for i := 0; i < 20; i++ {
		if err := exec.Command("true").Run(); err != nil {
			t.Fatalf("host cannot fork after the bomb: %v", err)
		}
	}
}

func TestTimeoutKills(t *testing.T) {
	e := newExecutor(t)
	res, _ := run(t, e, sandbox.Job{ID: "timeout", Image: "busybox", Runtime: sandbox.RuntimeRunc,
		Command: []string{"sh", "-c", "sleep 120 & sleep 120"}, Limits: sandbox.Limits{Timeout: 2 * time.Second}})
	if res.Reason != sandbox.ReasonTimeout {
		t.Errorf("reason %s, want timeout", res.Reason)
	}
	// Killed at the deadline, not at the end of the sleep.
	if d := time.Duration(res.DurationMS) * time.Millisecond; d < 2*time.Second || d > 60*time.Second {
		t.Errorf("job lasted %v for a 2s timeout", d)
	}
}

func TestOutputCap(t *testing.T) {
	e := newExecutor(t)
	res, _ := run(t, e, sandbox.Job{ID: "outcap", Image: "busybox", Runtime: sandbox.RuntimeRunc,
		Command: []string{"sh", "-c", "head -c 5000000 /dev/zero > /data/out/big.bin; sleep 30"},
		Limits:  sandbox.Limits{OutputBytes: 1 << 20, Timeout: time.Minute}})
	if res.Reason != sandbox.ReasonOutputLimit {
		t.Errorf("reason %s, want output_limit", res.Reason)
	}
	for _, o := range res.Outputs {
		if o.Size > 1<<20 {
			t.Errorf("output %s is %d bytes, above the 1 MiB cap", o.Path, o.Size)
		}
	}
}

func TestRejectedOutputs(t *testing.T) {
	e := newExecutor(t)
	script := `cd /data/out
echo data > good.csv
mkdir -p sub && echo nested > sub/part.csv
echo secret > .hidden
ln -s /etc/passwd escape
ln -s ../../../etc/passwd relative-escape
echo a > linked && ln linked hardlink
mkfifo pipe
`
	res, q := run(t, e, sandbox.Job{ID: "rejects", Image: "busybox", Runtime: sandbox.RuntimeRunc, Command: []string{"sh", "-c", script}})
	if res.Reason != sandbox.ReasonExited || res.ExitCode != 0 {
		t.Fatalf("job ended %s/%d", res.Reason, res.ExitCode)
	}
	got := map[string]string{}
	for _, r := range res.Rejected {
		got[r.Path] = r.Reason
	}
	want := map[string]string{
		".hidden": "hidden file", "escape": "symbolic link", "relative-escape": "symbolic link",
		"linked": "hard link", "hardlink": "hard link", "pipe": "named pipe (FIFO)",
	}
	for p, reason := range want {
		if got[p] != reason {
			t.Errorf("%s: rejected as %q, want %q", p, got[p], reason)
		}
	}
	var paths []string
	for _, o := range res.Outputs {
		paths = append(paths, o.Path)
		if len(o.SHA256) != 64 {
			t.Errorf("%s: sha256 %q", o.Path, o.SHA256)
		}
	}
	if strings.Join(paths, ",") != "good.csv,sub/part.csv" {
		t.Errorf("collected %v, want good.csv and sub/part.csv", paths)
	}
	if _, err := os.Lstat(filepath.Join(q, "out", "escape")); err == nil {
		t.Error("a rejected entry was copied to quarantine")
	}
}

func TestLogCap(t *testing.T) {
	e := newExecutor(t)
	res, q := run(t, e, sandbox.Job{ID: "logcap", Image: "busybox", Runtime: sandbox.RuntimeRunc,
		Command: []string{"sh", "-c", "yes sluice | head -c 5000000; yes err | head -c 5000000 >&2; echo done > /data/out/done"},
		Limits:  sandbox.Limits{LogBytes: 64 << 10}})
	if res.Reason != sandbox.ReasonExited || res.ExitCode != 0 || !res.LogsTruncated {
		t.Errorf("ended %s/%d, truncated %v: a chatty job must finish with capped logs", res.Reason, res.ExitCode, res.LogsTruncated)
	}
	for _, f := range []string{res.Stdout, res.Stderr} {
		fi, err := os.Stat(filepath.Join(q, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 64<<10 {
			t.Errorf("%s: %d bytes, want exactly the 64 KiB cap", f, fi.Size())
		}
	}
	if len(res.Outputs) != 1 {
		t.Errorf("outputs %+v", res.Outputs)
	}
}

// TestMissingImageFirst: a job whose image is not imported is refused before
// its inputs are read (the input here does not exist, and the error must be
// about the image), and leaves no workspace.
func TestMissingImageFirst(t *testing.T) {
	e := newExecutor(t)
	state := t.TempDir()
	job := sandbox.Job{ID: "no-image", Image: "sluice-test-not-imported", Command: []string{"true"},
		Inputs: []sandbox.Input{{Name: "residents", Path: filepath.Join(t.TempDir(), "missing.csv")}}}
	_, err := newRunner(t, e, state).Run(context.Background(), job, filepath.Join(t.TempDir(), "q"))
	if !errors.Is(err, sandbox.ErrNotFound) || !strings.Contains(err.Error(), "sluice-test-not-imported") {
		t.Fatalf("want the image named as not imported, got %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(state, "jobs")); len(left) != 0 {
		t.Fatalf("workspace left behind: %v", left)
	}
	assertGone(t, e, job.ID)
}

// TestExecutorIdempotent: preparing a prepared job, starting a started one,
// stopping or cleaning up one that is gone all succeed.
func TestExecutorIdempotent(t *testing.T) {
	e := newExecutor(t)
	ensureImage(t, e, "busybox")
	dir := t.TempDir()
	for _, d := range []string{"in", "out"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	inst := &sandbox.Instance{
		Job: sandbox.Job{ID: "idempotent", Image: "busybox", Runtime: sandbox.RuntimeRunc, Command: []string{"true"},
			Limits: sandbox.DefaultLimits},
		UID:    sandbox.MinJobUID + 4242, // not leased: this test drives the executor alone
		Mounts: sandbox.Mounts{Inputs: filepath.Join(dir, "in"), Output: filepath.Join(dir, "out")},
		Stdout: filepath.Join(dir, "stdout"), Stderr: filepath.Join(dir, "stderr"),
	}
	ctx := context.Background()
	t.Cleanup(func() { e.Cleanup(ctx, inst.Job.ID) })
	for i := range 2 {
		if err := e.Prepare(ctx, inst); err != nil {
			t.Fatalf("prepare #%d: %v", i+1, err)
		}
	}
	for i := range 2 {
		if err := e.Start(ctx, inst); err != nil {
			t.Fatalf("start #%d: %v", i+1, err)
		}
	}
	exit, err := e.Wait(ctx, inst)
	if err != nil || exit.Code != 0 {
		t.Fatalf("wait: %+v %v", exit, err)
	}
	for i := range 2 {
		if err := e.Cleanup(ctx, inst.Job.ID); err != nil {
			t.Fatalf("cleanup #%d: %v", i+1, err)
		}
	}
	if err := e.Stop(ctx, inst.Job.ID); err != nil {
		t.Errorf("stop after cleanup: %v", err)
	}
	if _, err := e.Inspect(ctx, inst.Job.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("inspect after cleanup: %v, want ErrNotFound", err)
	}
	assertGone(t, e, inst.Job.ID)
}

// TestDeadlineLabel: a running job's container carries its real deadline
// (it read year 1 when the label was written before the deadline was set).
func TestDeadlineLabel(t *testing.T) {
	e := newExecutor(t)
	ensureImage(t, e, "busybox")
	r := newRunner(t, e, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	before := time.Now()
	go func() {
		defer close(done)
		r.Run(ctx, sandbox.Job{ID: "deadline", Image: "busybox", Command: []string{"sleep", "60"}, Limits: sandbox.Limits{Timeout: time.Hour}},
			filepath.Join(t.TempDir(), "q"))
	}()
	var st sandbox.Status
	for range 300 {
		var err error
		if st, err = e.Inspect(context.Background(), "deadline"); err == nil && st.State == sandbox.StateRunning {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.State != sandbox.StateRunning {
		t.Fatalf("the job never ran: %+v", st)
	}
	if lo, hi := before.Add(time.Hour).Add(-time.Second), time.Now().Add(time.Hour).Add(time.Second); st.Deadline.Before(lo) || st.Deadline.After(hi) {
		t.Errorf("deadline label %v, want about an hour from the start (%v … %v)", st.Deadline, lo, hi)
	}
	cancel()
	<-done
}
