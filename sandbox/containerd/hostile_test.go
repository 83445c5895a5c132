package containerd_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/sandbox"
)

// These tests are the attacks of a hostile analyst (issue 7), each against
// the real containerd; every one of them failed before the fix it names.

// diskUse is the apparent size and the allocated bytes of everything
// under dir.
func diskUse(t *testing.T, dir string) (apparent, allocated int64) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil {
			apparent += st.Size
			allocated += st.Blocks * 512
		}
		return nil
	})
	return apparent, allocated
}

// TestSparseOutputOverCap: a sparse file passes a tmpfs cap (it uses no
// blocks) but its apparent size counts: the job ends output_limit, the file
// is rejected, nothing of it is copied, and the rest is collected.
func TestSparseOutputOverCap(t *testing.T) {
	e := newExecutor(t)
	for _, tc := range []struct {
		id, script string
	}{
		{"sparse-exit", "echo kept > /data/out/small.txt; truncate -s 5G /data/out/a.bin"},
		// Still running: the supervisor must see the apparent size and
		// stop it long before the timeout.
		{"sparse-run", "echo kept > /data/out/small.txt; truncate -s 5G /data/out/a.bin; sleep 120"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			res, q := run(t, e, sandbox.Job{ID: tc.id, Image: "busybox", Runtime: sandbox.RuntimeRunc,
				Command: []string{"sh", "-c", tc.script},
				Limits:  sandbox.Limits{OutputBytes: 1 << 20, Timeout: 90 * time.Second}})
			if res.Reason != sandbox.ReasonOutputLimit {
				t.Errorf("reason %s (error %q), want output_limit", res.Reason, res.Error)
			}
			if len(res.Outputs) != 1 || res.Outputs[0].Path != "small.txt" {
				t.Errorf("outputs %+v, want small.txt alone", res.Outputs)
			}
			if len(res.Rejected) != 1 || res.Rejected[0].Path != "a.bin" || !strings.Contains(res.Rejected[0].Reason, "apparent size 5GiB") {
				t.Errorf("rejected %+v, want a.bin for its apparent size", res.Rejected)
			}
			if _, err := os.Lstat(filepath.Join(q, "out", "a.bin")); err == nil {
				t.Error("the oversize file reached the quarantine")
			}
			if apparent, allocated := diskUse(t, q); apparent > 1<<20 || allocated > 1<<20 {
				t.Errorf("quarantine holds %d bytes (%d allocated), above the 1 MiB cap", apparent, allocated)
			}
		})
	}
}

// TestSparseOutputCollectedWhole: a sparse file within the cap is collected
// with its holes, its bytes and its hash intact.
func TestSparseOutputCollectedWhole(t *testing.T) {
	e := newExecutor(t)
	res, q := run(t, e, sandbox.Job{ID: "sparse-ok", Image: "busybox", Runtime: sandbox.RuntimeRunc,
		Command: []string{"sh", "-c", "truncate -s 900000 /data/out/s.bin && printf tail >> /data/out/s.bin"},
		Limits:  sandbox.Limits{OutputBytes: 1 << 20}})
	if res.Reason != sandbox.ReasonExited || len(res.Outputs) != 1 {
		t.Fatalf("ended %s with outputs %+v, rejected %+v", res.Reason, res.Outputs, res.Rejected)
	}
	want := append(make([]byte, 900000), "tail"...)
	got, err := os.ReadFile(filepath.Join(q, "out", "s.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("collected copy differs (err %v, %d bytes)", err, len(got))
	}
	if o, sum := res.Outputs[0], sha256.Sum256(want); o.Size != int64(len(want)) || o.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("output %+v, want size %d and the hash of the content", o, len(want))
	}
}

// tarGz writes a .tar.gz of the given entries: name → size of a regular
// file of zeros, or -1 for a directory.
func tarGz(t *testing.T, entries []tarEntry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "code.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	zeros := make([]byte, 1<<20)
	for _, en := range entries {
		if en.size < 0 {
			tw.WriteHeader(&tar.Header{Name: en.name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: en.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: en.size})
		for left := en.size; left > 0; left -= int64(len(zeros)) {
			tw.Write(zeros[:min(left, int64(len(zeros)))])
		}
	}
	if err := errors.Join(tw.Close(), gz.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return p
}

type tarEntry struct {
	name string
	size int64
}

// TestCodeBundleLimits: a small archive that unpacks to too many bytes,
// files or directories is an input error while it unpacks, and nothing of
// it stays on the host.
func TestCodeBundleLimits(t *testing.T) {
	e := newExecutor(t)
	ensureImage(t, e, "busybox")
	lim := sandbox.CodeLimits{Bytes: 8 << 20, Files: 50, Depth: 6}
	deep := strings.Repeat("d/", 7) + "x.py"
	var many []tarEntry
	for i := range 60 {
		many = append(many, tarEntry{"f" + strconv.Itoa(i) + ".py", 10})
	}
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		msg     string
	}{
		{"bytes", []tarEntry{{"main.py", 100}, {"blob.bin", 64 << 20}}, "unpacks to more than 8MiB"},
		{"bytes-spread", []tarEntry{{"a.bin", 5 << 20}, {"b.bin", 5 << 20}}, "unpacks to more than 8MiB"},
		{"files", many, "more than 50 files"},
		{"depth", []tarEntry{{deep, 10}}, "deeper than 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := tarGz(t, tc.entries)
			if fi, _ := os.Stat(bundle); fi.Size() > 1<<20 {
				t.Fatalf("the bundle is %d bytes: not a small archive", fi.Size())
			}
			state := t.TempDir()
			r, err := sandbox.NewRunner(e, state, sandbox.WithCodeLimits(lim))
			if err != nil {
				t.Fatal(err)
			}
			q := filepath.Join(t.TempDir(), "q")
			_, err = r.Run(context.Background(), sandbox.Job{ID: "code-" + tc.name, Image: "busybox", Code: bundle, Command: []string{"true"}}, q)
			if !errors.Is(err, sandbox.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want an input error saying %q", err, tc.msg)
			}
			if left, _ := os.ReadDir(filepath.Join(state, "jobs")); len(left) != 0 {
				t.Errorf("workspace left behind: %v", left)
			}
			if apparent, _ := diskUse(t, state); apparent != 0 {
				t.Errorf("%d bytes left in the state directory", apparent)
			}
			if _, err := os.Stat(q); err == nil {
				t.Error("a quarantine directory was created")
			}
			assertGone(t, e, "code-"+tc.name)
		})
	}
}

// TestOutputPathTooLong: a path longer than PATH_MAX under /data/out is one
// rejected output; the others are collected and the job ends as it ended.
// Neither the result nor the logs name a host path.
func TestOutputPathTooLong(t *testing.T) {
	e := newExecutor(t)
	// 15 levels of 200 bytes, twice: each call's path stays under
	// PATH_MAX, the whole one (6,000 bytes) does not.
	half := strings.TrimSuffix(strings.Repeat(strings.Repeat("x", 200)+"/", 15), "/")
	script := "echo good > /data/out/good.txt && cd /data/out && mkdir -p " + half + " && cd " + half + " && mkdir -p " + half + " && echo deep > " + half + "/deep.txt"
	state := t.TempDir()
	ensureImage(t, e, "busybox")
	q := filepath.Join(t.TempDir(), "quarantine")
	res, err := newRunner(t, e, state).Run(context.Background(), sandbox.Job{ID: "pathmax", Image: "busybox", Command: []string{"sh", "-c", script}}, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != sandbox.ReasonExited || res.ExitCode != 0 {
		t.Fatalf("ended %s/%d (%s), want exited/0", res.Reason, res.ExitCode, res.Error)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Path != "good.txt" {
		t.Errorf("outputs %+v, want good.txt", res.Outputs)
	}
	if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, "path longer than") {
		t.Errorf("rejected %+v, want the long path", res.Rejected)
	}
	noHostPaths(t, q, state)
}

// noHostPaths checks result.json and the logs for the state and
// quarantine directories and containerd's.
func noHostPaths(t *testing.T, q, state string) {
	t.Helper()
	for _, f := range []string{"result.json", "stdout", "stderr"} {
		b, err := os.ReadFile(filepath.Join(q, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{state, q, "/var/lib/", "/run/containerd"} {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s names the host path %s", f, p)
			}
		}
	}
}

// TestGVisorCrashIsRuntimeError: a gVisor sandbox that dies under a fork
// bomb is a runtime failure, not the job's exit; a job that exits 2 by
// itself is still an exit.
func TestGVisorCrashIsRuntimeError(t *testing.T) {
	e := newExecutor(t)
	if !e.GVisorAvailable() {
		t.Fatal("runsc is required (make test installs it)")
	}
	res, q := run(t, e, sandbox.Job{ID: "gvisor-bomb", Image: "busybox", Runtime: sandbox.RuntimeGVisor,
		Command: []string{"sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 60"},
		Limits:  sandbox.Limits{Timeout: time.Minute}})
	if res.Reason != sandbox.ReasonRuntime || !strings.Contains(res.Error, "gVisor sandbox crashed") {
		t.Errorf("ended %s (%q), want runtime_error", res.Reason, res.Error)
	}
	noHostPaths(t, q, "/var/lib/sluice-test")
	res, _ = run(t, e, sandbox.Job{ID: "gvisor-exit2", Image: "busybox", Runtime: sandbox.RuntimeGVisor, Command: []string{"sh", "-c", "exit 2"}})
	if res.Reason != sandbox.ReasonExited || res.ExitCode != 2 {
		t.Errorf("exit 2 ended %s/%d (%q), want exited/2", res.Reason, res.ExitCode, res.Error)
	}
}

// TestShmAndMqueue: /dev/shm is a tmpfs of the job's --shm-size, noexec;
// /dev/mqueue is not there.
func TestShmAndMqueue(t *testing.T) {
	e := newExecutor(t)
	script := `dd if=/dev/zero of=/dev/shm/x bs=1M count=64 2>/dev/null; echo "shm=$(wc -c < /dev/shm/x)"
grep ' /dev/shm ' /proc/self/mountinfo | grep -q noexec && echo shm-noexec
if [ -e /dev/mqueue ]; then echo mqueue=present; else echo mqueue=absent; fi`
	res, q := run(t, e, sandbox.Job{ID: "shm", Image: "busybox", Runtime: sandbox.RuntimeRunc,
		Command: []string{"sh", "-c", script}, Limits: sandbox.Limits{ShmBytes: 8 << 20}})
	out := readLog(t, q, res.Stdout)
	for _, w := range []string{"shm=8388608\n", "shm-noexec\n", "mqueue=absent\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", strings.TrimSpace(w), out)
		}
	}
}

// TestMisleadingNames: names that mislead people and tools are rejected
// with a reason.
func TestMisleadingNames(t *testing.T) {
	e := newExecutor(t)
	script := `cd /data/out
echo ok > ok.csv
echo a > "$(printf 'report\342\200\256vsc.exe')"
echo a > "$(printf 'zero\342\200\213width.csv')"
echo a > "$(printf 'line\342\200\250sep.csv')"
echo a > "   "
echo a > ./-rf
echo a > " lead.csv"
echo a > "trail.csv "
mkdir "$(printf 'dir\342\201\246')" && echo a > "$(printf 'dir\342\201\246')/inside.csv"
`
	res, _ := run(t, e, sandbox.Job{ID: "names", Image: "busybox", Runtime: sandbox.RuntimeRunc, Command: []string{"sh", "-c", script}})
	if len(res.Outputs) != 1 || res.Outputs[0].Path != "ok.csv" {
		t.Errorf("outputs %+v, want ok.csv alone", res.Outputs)
	}
	want := map[string]string{
		`"report\u202evsc.exe"`: "invisible", `"zero\u200bwidth.csv"`: "invisible", `"line\u2028sep.csv"`: "invisible",
		"   ": "blank", "-rf": "starts with '-'", " lead.csv": "white space", "trail.csv ": "white space", `"dir\u2066"`: "invisible",
	}
	got := map[string]string{}
	for _, r := range res.Rejected {
		got[r.Path] = r.Reason
	}
	for p, why := range want {
		if !strings.Contains(got[p], why) {
			t.Errorf("%s: rejected as %q, want a reason with %q (all: %q)", p, got[p], why, res.Rejected)
		}
	}
	if len(res.Rejected) != len(want) {
		t.Errorf("rejected %q, want %d entries", res.Rejected, len(want))
	}
}

// mountinfo is what a job sees of its mounts, without the mount IDs
// (kernel-wide counters) and with its own ID and uid replaced.
func mountinfo(out, id string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) > 3 {
			lines = append(lines, strings.Join(f[3:], " "))
		}
	}
	s := strings.ReplaceAll(strings.Join(lines, "\n"), id, "<job>")
	return ownUID.ReplaceAllString(s, "${1}=<uid>")
}

var ownUID = regexp.MustCompile(`\b(uid|gid)=\d{7,}`)

// TestNothingOfTheHostInMounts: two jobs of one image on one runner see the
// same mounts but for their own ID and uid: no per-job snapshot, nothing
// that counts other jobs. The image's /etc files are neutral.
func TestNothingOfTheHostInMounts(t *testing.T) {
	e := newExecutor(t)
	ensureImage(t, e, "busybox")
	r := newRunner(t, e, t.TempDir())
	var seen []string
	for _, id := range []string{"mounts-a", "mounts-b"} {
		q := filepath.Join(t.TempDir(), "q")
		res, err := r.Run(context.Background(), sandbox.Job{ID: id, Image: "busybox", Command: []string{"cat", "/proc/self/mountinfo"}}, q)
		if err != nil || res.Reason != sandbox.ReasonExited {
			t.Fatalf("%s: %v %+v", id, err, res)
		}
		seen = append(seen, mountinfo(readLog(t, q, res.Stdout), id))
		// Another job in between moves containerd's snapshot counter.
		run(t, e, sandbox.Job{ID: id + "-between", Image: "busybox", Command: []string{"true"}})
	}
	if seen[0] != seen[1] {
		t.Errorf("two jobs see different mounts:\n%s\n---\n%s", seen[0], seen[1])
	}
	res, q := run(t, e, sandbox.Job{ID: "etc-neutral", Image: "python", Runtime: sandbox.RuntimeRunc,
		Command: []string{"sh", "-c", "cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; wc -c < /etc/resolv.conf"}})
	want := "sandbox\n---\n127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n---\n0\n"
	if got := readLog(t, q, res.Stdout); got != want {
		t.Errorf("python image /etc:\n%s\nwant:\n%s", got, want)
	}
	host, _ := os.Hostname()
	if out := readLog(t, q, res.Stdout); host != "sandbox" && strings.Contains(out, host) {
		t.Errorf("the image names the build host %q", host)
	}
}

// seccompProbe calls each syscall by number with arguments the kernel
// refuses (-1 everywhere) and prints its errno: EPERM (1) is seccomp's
// answer; a call that reached the kernel says EBADF, EFAULT, EINVAL, ESRCH…
const seccompProbe = `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, nr in [(a.split("=")[0], int(a.split("=")[1])) for a in sys.argv[1:]]:
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(-1)] * 6)
    print(name, ctypes.get_errno() if r == -1 else "ok")
`

// TestSeccompRefuses: each call Sluice's profile removes from containerd's
// default fails with EPERM; calls the default allows still reach the
// kernel.
func TestSeccompRefuses(t *testing.T) {
	e := newExecutor(t)
	refused := map[string]int{ // x86_64 numbers
		"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
		"io_setup": 206, "io_destroy": 207, "io_getevents": 208, "io_submit": 209, "io_cancel": 210, "io_pgetevents": 333,
		"mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
		"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "name_to_handle_at": 303,
	}
	allowed := map[string]int{"read": 0, "close": 3, "fstat": 5}
	args := []string{"python3", "-c", seccompProbe}
	for n, nr := range refused {
		args = append(args, n+"="+strconv.Itoa(nr))
	}
	for n, nr := range allowed {
		args = append(args, n+"="+strconv.Itoa(nr))
	}
	res, q := run(t, e, sandbox.Job{ID: "seccomp", Image: "python", Runtime: sandbox.RuntimeRunc, Command: args})
	if res.Reason != sandbox.ReasonExited || res.ExitCode != 0 {
		t.Fatalf("ended %s/%d: %s", res.Reason, res.ExitCode, readLog(t, q, res.Stderr))
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(readLog(t, q, res.Stdout)), "\n") {
		if name, errno, ok := strings.Cut(l, " "); ok {
			got[name] = errno
		}
	}
	for n := range refused {
		if got[n] != "1" {
			t.Errorf("%s: errno %q, want 1 (EPERM from seccomp)", n, got[n])
		}
	}
	for n := range allowed {
		if got[n] == "1" || got[n] == "" {
			t.Errorf("%s: errno %q, want the kernel's answer (EBADF)", n, got[n])
		}
	}
}

// inotifyHog exhausts the inotify instances its user may have, says how
// many it got in /data/out/count, and holds them.
const inotifyHog = `
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
n = 0
while libc.inotify_init1(0) >= 0:
    n += 1
open("/data/out/count", "w").write("%d %d %d" % (n, ctypes.get_errno(), os.getuid()))
time.sleep(60)
`

// inotifyOne opens one inotify instance and says whether it could.
const inotifyOne = `
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
open("/data/out/one", "w").write("%d %d %d" % (fd, ctypes.get_errno(), os.getuid()))
time.sleep(60)
`

// TestJobsHaveTheirOwnUID: two concurrent runc jobs run as different host
// uids (seen from the host), and one that exhausts its inotify instances
// leaves the other its own.
func TestJobsHaveTheirOwnUID(t *testing.T) {
	e := newExecutor(t)
	ensureImage(t, e, "python")
	state := t.TempDir()
	r := newRunner(t, e, state)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	start := func(id, script string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Run(ctx, sandbox.Job{ID: id, Image: "python", Command: []string{"python3", "-c", script}, Limits: sandbox.Limits{Timeout: 2 * time.Minute}},
				filepath.Join(t.TempDir(), id))
		}()
	}
	// waitFor reads a file the job writes to its /data/out (the host sees
	// it in the workspace while the job runs).
	waitFor := func(id, name string) []string {
		p := filepath.Join(sandbox.JobDir(state, id), "out", name)
		for range 600 {
			if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
				return strings.Fields(string(b))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("job %s never wrote %s", id, name)
		return nil
	}
	start("uid-hog", inotifyHog)
	hog := waitFor("uid-hog", "count")
	start("uid-other", inotifyOne)
	other := waitFor("uid-other", "one")
	if hog[1] != strconv.Itoa(int(unix.EMFILE)) {
		t.Errorf("the hog stopped with errno %s after %s instances, want EMFILE (its per-user limit)", hog[1], hog[0])
	}
	if fd, _ := strconv.Atoi(other[0]); fd < 0 {
		t.Errorf("the other job got no inotify instance (errno %s): the hog exhausted it", other[1])
	}
	// From the host: each job's processes run as its own uid.
	hostUIDs := map[string]string{}
	for _, id := range []string{"uid-hog", "uid-other"} {
		c, err := e.Client().LoadContainer(namespaces.WithNamespace(ctx, e.Namespace()), id)
		if err != nil {
			t.Fatal(err)
		}
		task, err := c.Task(namespaces.WithNamespace(ctx, e.Namespace()), nil)
		if err != nil {
			t.Fatal(err)
		}
		pids, err := task.Pids(namespaces.WithNamespace(ctx, e.Namespace()))
		if err != nil || len(pids) == 0 {
			t.Fatalf("%s: pids %v %v", id, pids, err)
		}
		status, err := os.ReadFile("/proc/" + strconv.Itoa(int(pids[0].Pid)) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) == 5 && f[0] == "Uid:" {
				hostUIDs[id] = f[1]
				if f[1] != f[2] || f[1] != f[3] || f[1] != f[4] {
					t.Errorf("%s: mixed uids %v", id, f[1:])
				}
			}
		}
	}
	if hostUIDs["uid-hog"] == hostUIDs["uid-other"] || hostUIDs["uid-hog"] != hog[2] || hostUIDs["uid-other"] != other[2] {
		t.Errorf("host uids %v, uids inside %s and %s: want two different uids, the same inside and out", hostUIDs, hog[2], other[2])
	}
	for id, uid := range hostUIDs {
		if n, _ := strconv.Atoi(uid); n < sandbox.MinJobUID {
			t.Errorf("%s runs as host uid %s, below the job range", id, uid)
		}
	}
	cancel()
	wg.Wait()
}

// runscUIDs finds the host uids of a gVisor job's sandbox processes (the
// sentry, runsc-sandbox, and the gofer, runsc-gofer) by their command lines.
func runscUIDs(t *testing.T, id string) map[string]string {
	t.Helper()
	uids := map[string]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) < 2 || args[0] != "runsc-sandbox" && args[0] != "runsc-gofer" || !strings.Contains(string(cmdline), id) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(p, "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) == 5 && f[0] == "Uid:" {
				uids[args[0]] = f[1]
			}
		}
	}
	return uids
}

// TestGVisorSandboxesHaveTheirOwnUID: two concurrent gVisor jobs' sandbox
// processes run as host uids of their own — not root, not nobody, not each
// other's, not their jobs' — while each job still owns its /data/out.
func TestGVisorSandboxesHaveTheirOwnUID(t *testing.T) {
	e := newExecutor(t)
	if !e.GVisorAvailable() {
		t.Fatal("runsc is required (make test builds it)")
	}
	ensureImage(t, e, "busybox")
	state := t.TempDir()
	r := newRunner(t, e, state)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	ids := []string{"gvisor-uid-a", "gvisor-uid-b"}
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Run(ctx, sandbox.Job{ID: id, Image: "busybox", Runtime: sandbox.RuntimeGVisor, Limits: sandbox.Limits{Timeout: 2 * time.Minute},
				Command: []string{"sh", "-c", "id -u > /data/out/uid && sleep 60"}}, filepath.Join(t.TempDir(), id))
		}()
	}
	seen := map[string]string{}
	for _, id := range ids {
		var jobUID string
		for range 600 {
			if b, err := os.ReadFile(filepath.Join(sandbox.JobDir(state, id), "out", "uid")); err == nil && len(b) > 0 {
				jobUID = strings.TrimSpace(string(b))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if jobUID == "" {
			t.Fatalf("%s never wrote its uid to /data/out", id)
		}
		uids := runscUIDs(t, id)
		if len(uids) != 2 || uids["runsc-sandbox"] != uids["runsc-gofer"] {
			t.Fatalf("%s: sandbox processes %v, want a sentry and a gofer of one uid", id, uids)
		}
		u := uids["runsc-sandbox"]
		if n, _ := strconv.Atoi(u); n < sandbox.MinJobUID || u == jobUID {
			t.Errorf("%s: the sandbox runs as host uid %s (the job as %s): want a uid of its own from the job range", id, u, jobUID)
		}
		for _, uid := range []string{u, jobUID} {
			if other, dup := seen[uid]; dup {
				t.Errorf("%s: host uid %s is also %s's", id, uid, other)
			}
		}
		seen[u], seen[jobUID] = id+" sandbox", id
	}
	cancel()
	wg.Wait()
}
