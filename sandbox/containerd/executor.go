package containerd

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/internal/atomicfile"
	"github.com/sluicehq/sluice/sandbox"
)

// Defaults.
const (
	DefaultAddress   = "/run/containerd/containerd.sock"
	DefaultNamespace = "sluice"
	// Labels on every job container.
	labelJob      = "sluice.job"
	labelDeadline = "sluice.deadline"
	labelRuntime  = "sluice.runtime"
	labelOwner    = "sluice.owner"   // the state directory of the runner that made the container
	labelRootfs   = "sluice.rootfs"  // key of the image's shared read-only view
	labelProcess  = "sluice.process" // on that view: the image's imageProcess
	runcShim      = "io.containerd.runc.v2"
	// rootfsPrefix names the read-only snapshot views job roots are
	// mounted from: one per image, shared by all its jobs.
	rootfsPrefix = "sluice-rootfs-"
)

// Executor runs jobs as containerd containers.
type Executor struct {
	client      *containerd.Client
	ns          string
	snapshotter string
	runsc       string // runsc binary; empty when gVisor is unavailable
	wrapperDir  string

	mu    sync.Mutex
	tasks map[string]*running // tasks this process started or reattached

	runscOnce sync.Once
	runscErr  error // why runsc cannot run Sluice's sandboxes, once checked
}

type running struct {
	task   containerd.Task
	io     cio.IO
	stdout *cappedFile
	stderr *cappedFile
	usage  sandbox.Usage
	exited bool // Wait saw the task exit
}

var _ sandbox.Executor = (*Executor)(nil)

// Option configures an Executor.
type Option func(*Executor)

// WithNamespace sets the containerd namespace (default "sluice").
func WithNamespace(ns string) Option { return func(e *Executor) { e.ns = ns } }

// WithSnapshotter sets the snapshotter (default "overlayfs").
func WithSnapshotter(s string) Option { return func(e *Executor) { e.snapshotter = s } }

// WithRunsc enables the gVisor runtime with this runsc binary; wrapperDir
// receives the small wrapper script the runc shim runs instead of runc,
// and, in panic/, the Go runtime messages of each sandbox.
func WithRunsc(runsc, wrapperDir string) Option {
	return func(e *Executor) { e.runsc, e.wrapperDir = runsc, wrapperDir }
}

// LookRunsc finds runsc: the one hack/deps.sh builds into cacheDir/bin
// first, else the first on PATH; "" when there is none.
func LookRunsc(cacheDir string) string {
	if p := filepath.Join(cacheDir, "bin", "runsc"); unix.Access(p, unix.X_OK) == nil {
		return p
	}
	p, _ := exec.LookPath("runsc")
	return p
}

// New connects to containerd at address.
func New(ctx context.Context, address string, opts ...Option) (*Executor, error) {
	e := &Executor{ns: DefaultNamespace, snapshotter: "overlayfs", tasks: map[string]*running{}}
	for _, o := range opts {
		o(e)
	}
	if address == "" {
		address = DefaultAddress
	}
	if _, err := os.Stat(address); err != nil {
		return nil, fmt.Errorf("containerd socket %s: %w (is containerd running? `make test` installs and starts it)", address, sandbox.ErrUnavailable)
	}
	c, err := containerd.New(address, containerd.WithDefaultNamespace(e.ns), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %v: %w", address, err, sandbox.ErrUnavailable)
	}
	if _, err := c.Version(e.ctx(ctx)); err != nil {
		c.Close()
		return nil, fmt.Errorf("containerd at %s: %v: %w", address, err, sandbox.ErrUnavailable)
	}
	e.client = c
	return e, nil
}

// Close releases the connection; running jobs are not affected.
func (e *Executor) Close() error { return e.client.Close() }

// Client is the underlying containerd client (for image import and tests).
func (e *Executor) Client() *containerd.Client { return e.client }

// Namespace is the containerd namespace the executor works in.
func (e *Executor) Namespace() string { return e.ns }

func (e *Executor) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, e.ns)
}

// GVisorAvailable reports whether jobs may ask for the gvisor runtime.
func (e *Executor) GVisorAvailable() bool { return e.runsc != "" }

func mapErr(id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errdefs.IsNotFound(err):
		return fmt.Errorf("job %s: %v: %w", id, err, sandbox.ErrNotFound)
	case errdefs.IsUnavailable(err):
		return fmt.Errorf("job %s: %v: %w", id, err, sandbox.ErrUnavailable)
	}
	return fmt.Errorf("job %s: %w", id, err)
}

// Check reports whether the job's image is imported and its runtime
// available.
func (e *Executor) Check(ctx context.Context, job sandbox.Job) error {
	_, err := e.image(e.ctx(ctx), job)
	return err
}

// ImageDigest is the digest of an imported image's manifest (or index):
// what a job's image is pinned by.
func (e *Executor) ImageDigest(ctx context.Context, name string) (string, error) {
	image, err := e.getImage(e.ctx(ctx), name)
	if err != nil {
		return "", err
	}
	return image.Target().Digest.String(), nil
}

// getImage is an imported image, or ErrNotFound saying how to import it.
func (e *Executor) getImage(ctx context.Context, name string) (containerd.Image, error) {
	image, err := e.client.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %q is not imported (sluice image build / sluice image import): %w", name, sandbox.ErrNotFound)
	}
	if err != nil {
		return nil, mapErr(name, err)
	}
	return image, nil
}

// image returns the job's image, or why the job cannot run here.
func (e *Executor) image(ctx context.Context, job sandbox.Job) (containerd.Image, error) {
	if job.Runtime == sandbox.RuntimeGVisor {
		if e.runsc == "" {
			return nil, fmt.Errorf("job %s: the gvisor runtime is not available here (runsc not installed; hack/deps.sh containerd builds it): %w", job.ID, sandbox.ErrInvalidArgument)
		}
		if err := e.checkRunsc(); err != nil {
			return nil, fmt.Errorf("job %s: %w", job.ID, err)
		}
	}
	return e.getImage(ctx, job.Image)
}

// Prepare creates the container with the hardened spec. A job's root is
// the image's shared read-only view (rootfs), mounted when the task is
// created: no snapshot is made or removed per job, and no path in it says
// anything about other jobs.
func (e *Executor) Prepare(ctx context.Context, inst *sandbox.Instance) error {
	ctx = e.ctx(ctx)
	job := inst.Job
	if inst.UID < sandbox.MinJobUID || job.Runtime == sandbox.RuntimeGVisor && (inst.SandboxUID < sandbox.MinJobUID || inst.SandboxUID == inst.UID) {
		return fmt.Errorf("job %s: host uids %d/%d are not job uids: %w", job.ID, inst.UID, inst.SandboxUID, sandbox.ErrInvalidArgument)
	}
	image, err := e.image(ctx, job)
	if err != nil {
		return err
	}
	key, process, err := e.rootfs(ctx, image)
	if err != nil {
		return err
	}
	runtimeOpts := &options.Options{}
	if job.Runtime == sandbox.RuntimeGVisor {
		wrapper, err := e.runscWrapper()
		if err != nil {
			return err
		}
		runtimeOpts.BinaryName = wrapper
	}
	spec := append([]oci.SpecOpts{withImageProcess(process)}, hardenedSpec(inst)...)
	_, err = e.client.NewContainer(ctx, job.ID,
		containerd.WithImageName(image.Name()),
		containerd.WithRuntime(runcShim, runtimeOpts),
		containerd.WithContainerLabels(map[string]string{
			labelJob:      job.ID,
			labelRuntime:  string(job.Runtime),
			labelDeadline: strconv.FormatInt(inst.Deadline.Unix(), 10),
			labelRootfs:   key,
			labelOwner:    inst.Owner,
		}),
		containerd.WithNewSpec(spec...),
	)
	if errdefs.IsAlreadyExists(err) {
		return nil // already prepared
	}
	if err != nil {
		// A half-created container must not stay behind.
		e.Cleanup(context.WithoutCancel(ctx), job.ID)
		return mapErr(job.ID, err)
	}
	return nil
}

// rootfs returns the key of the image's read-only snapshot view, creating
// it on first use, and what a job takes from the image's config. The view
// is a garbage-collection root: it stays while the image does not change,
// and a changed image gets a new one. It carries that config in a label, so
// that the next job reads neither the manifest nor the config.
func (e *Executor) rootfs(ctx context.Context, image containerd.Image) (string, imageProcess, error) {
	// Keyed by the manifest digest, an existing view is found without
	// reading the manifest and config.
	key := rootfsPrefix + image.Target().Digest.Encoded()
	sn := e.client.SnapshotService(e.snapshotter)
	info, statErr := sn.Stat(ctx, key)
	if statErr == nil {
		var p imageProcess
		if v, ok := info.Labels[labelProcess]; ok && json.Unmarshal([]byte(v), &p) == nil {
			return key, p, nil
		}
	}
	p, err := readImageProcess(ctx, image)
	if err != nil || statErr == nil { // a view whose config did not fit in a label
		return key, p, err
	}
	diffIDs, err := image.RootFS(ctx)
	if err != nil {
		return "", p, fmt.Errorf("image %q: %w", image.Name(), err)
	}
	chain := identity.ChainID(diffIDs)
	if ok, err := image.IsUnpacked(ctx, e.snapshotter); err != nil || !ok {
		if err := image.Unpack(ctx, e.snapshotter); err != nil {
			return "", p, fmt.Errorf("unpack image %q: %w", image.Name(), err)
		}
	}
	labels := map[string]string{"containerd.io/gc.root": time.Now().UTC().Format(time.RFC3339)}
	if b, err := json.Marshal(p); err == nil && len(b) <= maxLabelValue {
		labels[labelProcess] = string(b)
	}
	_, err = sn.View(ctx, key, chain.String(), snapshots.WithLabels(labels))
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return "", p, fmt.Errorf("image %q: read-only view: %w", image.Name(), err)
	}
	return key, p, nil
}

// imageProcess is what a job takes from its image's config: the
// environment, entrypoint and command, and working directory. (The user
// and groups are Sluice's.)
type imageProcess struct {
	Env  []string `json:"env"`
	Args []string `json:"args"`
	Cwd  string   `json:"cwd"`
}

// maxLabelValue leaves room for the key in containerd's 4 KiB label limit.
const maxLabelValue = 4000

func readImageProcess(ctx context.Context, image containerd.Image) (imageProcess, error) {
	desc, err := image.Config(ctx)
	if err != nil {
		return imageProcess{}, err
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageConfig, images.MediaTypeDockerSchema2Config:
	default:
		return imageProcess{}, fmt.Errorf("image %q: unknown config media type %s", image.Name(), desc.MediaType)
	}
	blob, err := content.ReadBlob(ctx, image.ContentStore(), desc)
	if err != nil {
		return imageProcess{}, err
	}
	var img ocispec.Image
	if err := json.Unmarshal(blob, &img); err != nil {
		return imageProcess{}, fmt.Errorf("image %q: config: %w", image.Name(), err)
	}
	env := img.Config.Env
	if len(env) == 0 {
		env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	return imageProcess{Env: env, Args: append(slices.Clone(img.Config.Entrypoint), img.Config.Cmd...), Cwd: cmp.Or(img.Config.WorkingDir, "/")}, nil
}

// withImageProcess applies the image's environment, argv and working
// directory. (containerd's oci.WithImageConfig also mounts the root to read
// the image's groups; a job's user and groups are Sluice's, so that work is
// skipped.)
func withImageProcess(p imageProcess) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.Env, s.Process.Args, s.Process.Cwd = slices.Clone(p.Env), slices.Clone(p.Args), p.Cwd
		return nil
	}
}

// hardenedSpec is the isolation every job gets, applied after the image's
// own configuration so that nothing in the image can weaken it.
func hardenedSpec(inst *sandbox.Instance) []oci.SpecOpts {
	job := inst.Job
	lim := job.Limits
	scratch := func(dst string, size int64, mode string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "noexec", "mode=" + mode, "size=" + strconv.FormatInt(size, 10)}}
	}
	mounts := []specs.Mount{
		{Destination: sandbox.InputDir, Type: "bind", Source: inst.Mounts.Inputs, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
		{Destination: sandbox.OutputDir, Type: "bind", Source: inst.Mounts.Output, Options: []string{"rbind", "rw", "nosuid", "nodev", "noexec"}},
		scratch(sandbox.TmpDir, lim.TmpBytes, "1777"),
		scratch(sandbox.ShmDir, lim.ShmBytes, "1777"),
	}
	if inst.Mounts.Code != "" {
		mounts = append(mounts, specs.Mount{Destination: sandbox.CodeDir, Type: "bind", Source: inst.Mounts.Code, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	}
	const period = 100000
	opts := []oci.SpecOpts{
		oci.WithHostname("sandbox"),
		oci.WithEnv(append([]string{"HOME=/tmp", "TMPDIR=/tmp", "USER=sandbox", "LOGNAME=sandbox"}, job.Env...)),
		oci.WithRootFSReadonly(),
		oci.WithUIDGID(inst.UID, inst.UID),
		withNoAdditionalGIDs,
		oci.WithCapabilities(nil),
		oci.WithAmbientCapabilities(nil),
		oci.WithNoNewPrivileges,
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace}),
		oci.WithMemoryLimit(uint64(lim.Memory)),
		oci.WithMemorySwap(lim.Memory),
		oci.WithPidsLimit(lim.Pids),
		oci.WithCPUCFS(int64(lim.CPUs*period), period),
		oci.WithoutRunMount,
		withoutMounts("/dev/shm", "/dev/mqueue"),
		oci.WithMounts(mounts),
		withSeccomp,
		requireMaskedPaths,
	}
	if len(job.Command) > 0 {
		opts = append(opts, withCommand(job.Command))
	}
	if job.Runtime == sandbox.RuntimeGVisor {
		opts = append(opts, withSandboxUser(inst.UID, inst.SandboxUID))
	}
	return opts
}

// withSandboxUser gives a gVisor job a user namespace: runsc starts its
// sentry and gofer in the container's user namespace as its root, which is
// mapped to the job's sandbox uid, so that no two sandboxes (nor any host
// account) share a host uid; the job's own uid maps to itself, so that its
// /data/out is its own inside.
func withSandboxUser(uid, sandboxUID uint32) oci.SpecOpts {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: sandboxUID, Size: 1}, {ContainerID: uid, HostID: uid, Size: 1}}
	return oci.WithUserNamespace(m, m)
}

// withCommand makes cmd the whole argv, in place of the image's entrypoint and command.
func withCommand(cmd []string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.Args = cmd
		return nil
	}
}

// withoutMounts drops the default spec's mounts at these destinations.
func withoutMounts(dsts ...string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		kept := s.Mounts[:0]
		for _, m := range s.Mounts {
			if !slices.Contains(dsts, m.Destination) {
				kept = append(kept, m)
			}
		}
		s.Mounts = kept
		return nil
	}
}

// refusedSyscalls are the calls containerd's default seccomp profile
// allows that a data job never needs and that widen what a hostile one can
// reach: io_uring (its own large kernel surface, and outside seccomp's view
// once set up), kernel AIO (a host-wide limit, fs.aio-max-nr), POSIX
// message queues, tracing and reading other processes' memory, and file
// handles.
var refusedSyscalls = []string{
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
	"mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
	"ptrace", "process_vm_readv", "process_vm_writev",
	"name_to_handle_at",
}

// SeccompProfile is Sluice's seccomp profile for a spec: containerd's
// default without refusedSyscalls, which fail with EPERM like every call
// the default refuses, and for the native architecture only: 32-bit and
// x32 system calls, which no job image needs, are refused whole (and runc
// compiles a third of the filter at every start).
func SeccompProfile(s *oci.Spec) *specs.LinuxSeccomp {
	p := seccomp.DefaultProfile(s)
	if native, ok := nativeArch[runtime.GOARCH]; ok {
		p.Architectures = []specs.Arch{native}
	}
	kept := p.Syscalls[:0]
	for _, rule := range p.Syscalls {
		rule.Names = slices.DeleteFunc(rule.Names, func(n string) bool { return slices.Contains(refusedSyscalls, n) })
		if len(rule.Names) > 0 {
			kept = append(kept, rule)
		}
	}
	p.Syscalls = kept
	return p
}

var nativeArch = map[string]specs.Arch{"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64}

func withSeccomp(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	s.Linux.Seccomp = SeccompProfile(s)
	return nil
}

// withNoAdditionalGIDs drops any supplementary groups the image asked for.
func withNoAdditionalGIDs(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process != nil {
		s.Process.User.AdditionalGids = nil
	}
	return nil
}

// requireMaskedPaths refuses a spec that lost the default masked /proc paths.
func requireMaskedPaths(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Linux == nil || len(s.Linux.MaskedPaths) == 0 {
		return errors.New("spec lost its masked /proc paths")
	}
	return nil
}

func (e *Executor) runscWrapper() (string, error) {
	if err := os.MkdirAll(e.panicDir(), 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(e.wrapperDir, "runsc-sluice")
	// The container ID is the last argument of create; the sandbox that
	// create starts inherits --panic-log.
	script := fmt.Sprintf(`#!/bin/sh
# written by sluice: gVisor through the runc v2 shim, with no network; each
# sandbox's Go runtime messages (a crash) go to %[2]s/<container id>
for a; do id=$a; done
case " $* " in
*" create "*) exec %[1]s --network=none --oci-seccomp --panic-log="%[2]s/$id" "$@" ;;
esac
exec %[1]s --network=none --oci-seccomp "$@"
`, e.runsc, e.panicDir())
	if old, err := os.ReadFile(path); err == nil && string(old) == script {
		return path, nil
	}
	return path, atomicfile.WriteFile(path, []byte(script), 0o755)
}

// checkRunsc refuses a runsc that cannot start a sandbox in the
// container's user namespace (those without -directfs, such as Debian 12's
// release 20221219, run every sandbox as host nobody and fail on a spec
// with a user namespace). It runs once per Executor, on first need.
func (e *Executor) checkRunsc() error {
	e.runscOnce.Do(func() {
		out, err := exec.Command(e.runsc, "flags").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("\n  -directfs")) {
			e.runscErr = fmt.Errorf("runsc at %s is too old to give each sandbox a uid of its own (no -directfs); hack/deps.sh containerd builds a newer one into /var/cache/sluice/bin: %w", e.runsc, sandbox.ErrInvalidArgument)
		}
	})
	return e.runscErr
}

func (e *Executor) panicDir() string { return filepath.Join(e.wrapperDir, "panic") }

// runtimeFailure says why the job's runtime failed, or "": under gVisor, a
// sandbox whose Go runtime wrote a fatal error or panic crashed, whatever
// exit status it left. Only the first such line is kept: it names no host
// path.
func (e *Executor) runtimeFailure(id string) string {
	if e.runsc == "" {
		return ""
	}
	f, err := os.Open(filepath.Join(e.panicDir(), id))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	first := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first == "" {
			first = line
		}
		if strings.HasPrefix(line, "fatal error:") || strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "runtime:") {
			return "gVisor sandbox crashed: " + line
		}
	}
	if first != "" {
		return "gVisor sandbox crashed: " + first
	}
	return ""
}

// Start creates and starts the task. stdout and stderr go through FIFOs in
// the job directory, so that a later process can reattach to them.
func (e *Executor) Start(ctx context.Context, inst *sandbox.Instance) error {
	ctx = e.ctx(ctx)
	id := inst.Job.ID
	c, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		return mapErr(id, err)
	}
	r, err := openStreams(inst)
	if err != nil {
		return err
	}
	fifoDir := filepath.Join(filepath.Dir(inst.Stdout), "fifo")
	if err := os.MkdirAll(fifoDir, 0o700); err != nil {
		r.close()
		return err
	}
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata) // as loaded above
	if err != nil {
		r.close()
		return mapErr(id, err)
	}
	root, err := e.client.SnapshotService(e.snapshotter).Mounts(ctx, info.Labels[labelRootfs])
	if err != nil {
		r.close()
		return mapErr(id, fmt.Errorf("the image's read-only view: %w", err))
	}
	task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, r.stdout, r.stderr), cio.WithFIFODir(fifoDir)), containerd.WithRootFS(root))
	if err != nil {
		r.close()
		if errdefs.IsAlreadyExists(err) {
			return nil // already started
		}
		return mapErr(id, err)
	}
	r.task, r.io = task, task.IO()
	if err := task.Start(ctx); err != nil {
		task.Delete(ctx, containerd.WithProcessKill)
		r.close()
		return mapErr(id, err)
	}
	e.mu.Lock()
	e.tasks[id] = r
	e.mu.Unlock()
	return nil
}

func openStreams(inst *sandbox.Instance) (*running, error) {
	out, err := openCapped(inst.Stdout, inst.Job.Limits.LogBytes)
	if err != nil {
		return nil, err
	}
	errf, err := openCapped(inst.Stderr, inst.Job.Limits.LogBytes)
	if err != nil {
		out.Close()
		return nil, err
	}
	return &running{stdout: out, stderr: errf}, nil
}

func (r *running) close() {
	if r.io != nil {
		r.io.Close()
	}
	r.stdout.Close()
	r.stderr.Close()
}

// attached returns the in-memory task, reattaching to the FIFOs of a task
// started by an earlier process.
func (e *Executor) attached(ctx context.Context, inst *sandbox.Instance) (*running, error) {
	id := inst.Job.ID
	e.mu.Lock()
	r := e.tasks[id]
	e.mu.Unlock()
	if r != nil {
		return r, nil
	}
	c, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, mapErr(id, err)
	}
	r, err = openStreams(inst)
	if err != nil {
		return nil, err
	}
	task, err := c.Task(ctx, cio.NewAttach(cio.WithStreams(nil, r.stdout, r.stderr)))
	if err != nil {
		r.close()
		return nil, mapErr(id, err)
	}
	r.task, r.io = task, task.IO()
	e.mu.Lock()
	e.tasks[id] = r
	e.mu.Unlock()
	return r, nil
}

// Wait blocks until the task exits. It samples resource use while waiting
// and reads the OOM-kill counter of the task's cgroup before returning.
func (e *Executor) Wait(ctx context.Context, inst *sandbox.Instance) (sandbox.Exit, error) {
	ctx = e.ctx(ctx)
	id := inst.Job.ID
	r, err := e.attached(ctx, inst)
	if err != nil {
		return sandbox.Exit{}, err
	}
	statusC, err := r.task.Wait(ctx)
	if err != nil {
		return sandbox.Exit{}, mapErr(id, err)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var oom bool
	for {
		select {
		case st := <-statusC:
			code, at, err := st.Result()
			if err != nil {
				return sandbox.Exit{}, mapErr(id, err)
			}
			if o, ok := e.sample(ctx, r); ok {
				oom = oom || o
			}
			if r.io != nil {
				e.drainLogs(r.io)
			}
			e.mu.Lock()
			r.exited = true
			usage := r.usage
			e.mu.Unlock()
			return sandbox.Exit{Code: int(code), At: at, OOMKilled: oom || (code == 137 && usage.MaxMemoryBytes >= uint64(inst.Job.Limits.Memory)),
				Usage: usage, RuntimeError: e.runtimeFailure(id)}, nil
		case <-tick.C:
			if o, ok := e.sample(ctx, r); ok {
				oom = oom || o
			}
		case <-ctx.Done():
			return sandbox.Exit{}, ctx.Err()
		}
	}
}

// logDrain is how long the log copy of an exited task may take to reach
// the end of its FIFOs.
const logDrain = 10 * time.Second

// drainLogs waits for the copy of an exited task's stdout and stderr to end,
// which it does when the FIFOs close. A FIFO whose writer is gone for good
// — a task reattached after its first supervisor was killed, whose shim had
// already closed its end — never closes for the reader: after logDrain the
// copy is cancelled, and what it copied is kept.
func (e *Executor) drainLogs(io cio.IO) {
	done := make(chan struct{})
	go func() { io.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(logDrain):
	}
	io.Cancel() // unblocks the FIFO opens and reads; the copy then ends
	select {
	case <-done:
	case <-time.After(logDrain):
	}
}

// sample reads the task's cgroup metrics: peak memory, CPU time and whether
// the OOM killer struck.
func (e *Executor) sample(ctx context.Context, r *running) (oom bool, ok bool) {
	if cg, ok := readCgroup(e.ns, r.task.ID()); ok {
		e.mu.Lock()
		defer e.mu.Unlock()
		r.usage.MaxMemoryBytes = max(r.usage.MaxMemoryBytes, cg.usage.MaxMemoryBytes)
		r.usage.CPUNanos = max(r.usage.CPUNanos, cg.usage.CPUNanos)
		return cg.oom, true
	}
	m, err := r.task.Metrics(ctx)
	if err != nil || m == nil || m.Data == nil {
		return false, false
	}
	data, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return false, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch s := data.(type) {
	case *v1.Metrics:
		if s.Memory != nil && s.Memory.Usage != nil {
			r.usage.MaxMemoryBytes = max(r.usage.MaxMemoryBytes, s.Memory.Usage.Max)
		}
		if s.CPU != nil && s.CPU.Usage != nil {
			r.usage.CPUNanos = max(r.usage.CPUNanos, s.CPU.Usage.Total)
		}
		return s.MemoryOomControl != nil && s.MemoryOomControl.OomKill > 0, true
	case *v2.Metrics:
		if s.Memory != nil {
			r.usage.MaxMemoryBytes = max(r.usage.MaxMemoryBytes, s.Memory.Usage)
		}
		if s.CPU != nil {
			r.usage.CPUNanos = max(r.usage.CPUNanos, s.CPU.UsageUsec*1000)
		}
		return s.MemoryEvents != nil && s.MemoryEvents.OomKill > 0, true
	}
	return false, false
}

// Stop kills every process of the task.
func (e *Executor) Stop(ctx context.Context, id string) error {
	ctx = e.ctx(ctx)
	c, err := e.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return mapErr(id, err)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return mapErr(id, err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
		return mapErr(id, err)
	}
	return nil
}

// Inspect reports the job's state, its exit when stopped, and resource use.
func (e *Executor) Inspect(ctx context.Context, id string) (sandbox.Status, error) {
	ctx = e.ctx(ctx)
	st := sandbox.Status{ID: id, State: sandbox.StateUnknown}
	c, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		return st, mapErr(id, err)
	}
	if info, err := c.Info(ctx); err == nil {
		st.Image, st.Owner = info.Image, info.Labels[labelOwner]
		if d, err := strconv.ParseInt(info.Labels[labelDeadline], 10, 64); err == nil {
			st.Deadline = time.Unix(d, 0)
		}
	}
	e.mu.Lock()
	r := e.tasks[id]
	e.mu.Unlock()
	if r != nil {
		e.mu.Lock()
		st.Usage = r.usage
		e.mu.Unlock()
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		st.State = sandbox.StateCreated
		return st, nil
	}
	if err != nil {
		return st, mapErr(id, err)
	}
	ts, err := task.Status(ctx)
	if err != nil {
		return st, mapErr(id, err)
	}
	switch ts.Status {
	case containerd.Running, containerd.Pausing, containerd.Paused:
		st.State = sandbox.StateRunning
	case containerd.Created:
		st.State = sandbox.StateCreated
	case containerd.Stopped:
		st.State = sandbox.StateStopped
		exit := &sandbox.Exit{Code: int(ts.ExitStatus), At: ts.ExitTime, RuntimeError: e.runtimeFailure(id)}
		probe := &running{task: task}
		if oom, ok := e.sample(ctx, probe); ok {
			exit.OOMKilled = oom
			if r == nil {
				st.Usage = probe.usage
			}
		}
		exit.Usage = st.Usage
		st.Exit = exit
	}
	return st, nil
}

// Cleanup removes the task, the container and its snapshot.
func (e *Executor) Cleanup(ctx context.Context, id string) error {
	ctx = e.ctx(ctx)
	e.mu.Lock()
	r := e.tasks[id]
	delete(e.tasks, id)
	e.mu.Unlock()
	var errs []error
	if r != nil && r.exited {
		// This process saw the task exit: delete it and the container
		// (which has no snapshot of its own) without looking them up.
		if _, err := r.task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, mapErr(id, err))
		}
		if err := e.client.ContainerService().Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, mapErr(id, err))
		}
	} else if c, err := e.client.LoadContainer(ctx, id); err == nil {
		if task, err := c.Task(ctx, nil); err == nil {
			if err := killAndWait(ctx, task); err != nil {
				errs = append(errs, mapErr(id, err))
			}
			if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, mapErr(id, err))
			}
		} else if !errdefs.IsNotFound(err) {
			errs = append(errs, mapErr(id, err))
		}
		// A container made before jobs shared their image's view has a
		// snapshot of its own.
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, mapErr(id, err))
		}
	} else if !errdefs.IsNotFound(err) {
		errs = append(errs, mapErr(id, err))
	}
	if r != nil {
		r.close()
	}
	if e.runsc != "" {
		if err := os.Remove(filepath.Join(e.panicDir(), id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killAndWait kills a task that has not stopped yet and waits for it to
// stop. (Killing a stopped gVisor sandbox fails, so stopped tasks are left
// alone.)
func killAndWait(ctx context.Context, task containerd.Task) error {
	st, err := task.Status(ctx)
	if err != nil || st.Status == containerd.Stopped {
		return nil
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("task did not stop 30s after SIGKILL")
	}
}

// List returns the jobs whose containers exist in the namespace.
func (e *Executor) List(ctx context.Context) ([]string, error) {
	ctx = e.ctx(ctx)
	cs, err := e.client.Containers(ctx, fmt.Sprintf("labels.%q", labelJob))
	if err != nil {
		return nil, mapErr("", err)
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID())
	}
	return ids, nil
}

// cappedFile appends to a file up to a limit and silently drops the rest,
// so that a chatty job cannot fill the disk or block on its pipe.
type cappedFile struct {
	mu   sync.Mutex
	f    *os.File
	left int64
}

func openCapped(path string, limit int64) (*cappedFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &cappedFile{f: f, left: limit - fi.Size()}, nil
}

func (c *cappedFile) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int64(len(p))
	if n > c.left {
		if c.left <= 0 {
			return len(p), nil
		}
		p = p[:c.left]
	}
	if _, err := c.f.Write(p); err != nil {
		return 0, err
	}
	c.left -= int64(len(p))
	return int(n), nil
}

func (c *cappedFile) Close() error { return c.f.Close() }

var _ io.Writer = (*cappedFile)(nil)
