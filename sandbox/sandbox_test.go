package sandbox

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestLimitsResolve(t *testing.T) {
	got, err := Limits{Memory: 64 << 20}.Resolve(DefaultLimits, MaxLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got.Memory != 64<<20 || got.Timeout != DefaultLimits.Timeout || got.Pids != DefaultLimits.Pids {
		t.Errorf("resolved %+v", got)
	}
	tests := []struct {
		in   Limits
		want error
		msg  string
	}{
		{Limits{Memory: MaxLimits.Memory + 1}, ErrLimit, "memory"},
		{Limits{CPUs: 64}, ErrLimit, "cpus 64"},
		{Limits{Timeout: 48 * time.Hour}, ErrLimit, "timeout 48h0m0s"},
		{Limits{Pids: 1 << 20}, ErrLimit, "pids"},
		{Limits{OutputBytes: 1 << 40}, ErrLimit, "output size"},
		{Limits{Memory: -1}, ErrInvalidArgument, "negative"},
		{Limits{Memory: 1 << 20}, ErrInvalidArgument, "below"},
	}
	for _, tc := range tests {
		_, err := tc.in.Resolve(DefaultLimits, MaxLimits)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Resolve(%+v) = %v, want %v mentioning %q", tc.in, err, tc.want, tc.msg)
		}
	}
}

func TestJobValidate(t *testing.T) {
	ok := Job{ID: "job-1", Image: "busybox", Runtime: RuntimeRunc}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Job{
		{ID: "Bad ID", Image: "busybox", Runtime: RuntimeRunc},
		{ID: "job-1", Runtime: RuntimeRunc},
		{ID: "job-1", Image: "busybox", Runtime: "kata"},
		{ID: "job-1", Image: "busybox", Runtime: RuntimeRunc, Inputs: []Input{{Name: "../x"}}},
		{ID: "job-1", Image: "busybox", Runtime: RuntimeRunc, Inputs: []Input{{Name: "a"}, {Name: "a"}}},
		{ID: "job-1", Image: "busybox", Runtime: RuntimeRunc, Env: []string{"1BAD=x"}},
	}
	for _, j := range bad {
		if err := j.Validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidArgument", j, err)
		}
	}
}

// TestCollectRejects builds every kind of entry a job could leave — some
// that a job user cannot create itself, like devices — and collects.
func TestCollectRejects(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "q")
	write := func(name, content string) {
		os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755)
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("report.csv", "a,b\n1,2\n")
	write("dir/model.json", "{}")
	write(".env", "SECRET=1")
	write(".git/config", "x")
	write("linked", "x")
	os.Link(filepath.Join(src, "linked"), filepath.Join(src, "hardlink"))
	os.Symlink("/etc/shadow", filepath.Join(src, "shadow"))
	os.Symlink("../../outside", filepath.Join(src, "dir", "up"))
	unix.Mkfifo(filepath.Join(src, "fifo"), 0o644)
	if err := unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod (tests run as root): %v", err)
	}
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	write("bad\nname", "x")

	outs, rejected, err := Collect(src, dst, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outs {
		got = append(got, o.Path)
	}
	if strings.Join(got, ",") != "dir/model.json,report.csv" {
		t.Errorf("collected %v", got)
	}
	want := map[string]string{
		".env": "hidden file", ".git": "hidden file", "linked": "hard link", "hardlink": "hard link",
		"shadow": "symbolic link", "dir/up": "symbolic link", "fifo": "named pipe (FIFO)",
		"null": "device", "sock": "socket", `"bad\nname"`: "name contains control characters",
	}
	gotRej := map[string]string{}
	for _, r := range rejected {
		gotRej[r.Path] = r.Reason
	}
	for p, why := range want {
		if gotRej[p] != why {
			t.Errorf("%s: rejected as %q, want %q", p, gotRej[p], why)
		}
	}
	if len(rejected) != len(want) {
		t.Errorf("rejected %d entries, want %d: %+v", len(rejected), len(want), rejected)
	}
	// Nothing rejected reached the quarantine.
	entries, _ := os.ReadDir(dst)
	for _, e := range entries {
		if e.Name() != "report.csv" && e.Name() != "dir" {
			t.Errorf("quarantine holds %s", e.Name())
		}
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("device gone")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// TestCreateFromLeavesNoPartialFile: a copy into quarantine or the code
// directory that fails half-way leaves no file, and never overwrites one.
func TestCreateFromLeavesNoPartialFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.csv")
	if err := createFrom(p, 0o600, &failingReader{n: 5000}); err == nil {
		t.Fatal("a failing reader reported no error")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("partial file left behind: %v", err)
	}
	if err := createFrom(p, 0o600, strings.NewReader("a,b\n")); err != nil {
		t.Fatal(err)
	}
	if err := createFrom(p, 0o600, strings.NewReader("x")); err == nil {
		t.Fatal("an existing file was overwritten")
	}
	if b, _ := os.ReadFile(p); string(b) != "a,b\n" {
		t.Fatalf("existing file changed: %q", b)
	}
}

// TestCollectWithinCap: the cap holds for the sum of apparent sizes: a
// sparse file is measured by its apparent size, and a file that no longer
// fits in what is left is rejected while the rest are still collected.
func TestCollectWithinCap(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "q")
	write := func(name string, size int64) {
		f, err := os.Create(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("end"), size-3)
	}
	write("a.bin", 600<<10)
	write("b.bin", 10<<30) // sparse
	write("c.bin", 600<<10)
	write("d.bin", 300<<10)
	outs, rejected, err := Collect(src, dst, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outs {
		got = append(got, o.Path)
	}
	if strings.Join(got, ",") != "a.bin,d.bin" {
		t.Errorf("collected %v, want a.bin and d.bin", got)
	}
	if len(rejected) != 2 || rejected[0].Path != "b.bin" || rejected[1].Path != "c.bin" {
		t.Errorf("rejected %+v, want b.bin and c.bin", rejected)
	}
	var total int64
	filepath.Walk(dst, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	if total > 1<<20 {
		t.Errorf("%d bytes collected under a 1 MiB cap", total)
	}
}

func TestUnsafeName(t *testing.T) {
	for name, want := range map[string]string{
		"report.csv": "", "收入_按城市.csv": "", "a b.csv": "",
		"x\u202ecsv.exe": "invisible", "a\u200bb": "invisible", "a\u2028b": "invisible", "a\ufeff": "invisible",
		"   ": "blank", "\u3000": "blank", " a": "white space", "a\u00a0": "white space",
		"-rf": "'-'", ".env": "hidden", "a\nb": "control", "\xff": "UTF-8",
	} {
		got := unsafeName(name)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("unsafeName(%+q) = %q, want %q", name, got, want)
		}
	}
}
