package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/internal/atomicfile"
)

// Result is what happened to a job. It is written to result.json in the
// quarantine directory and holds no data values.
type Result struct {
	JobID      string     `json:"job_id"`
	Image      string     `json:"image"`
	Runtime    Runtime    `json:"runtime"`
	ExitCode   int        `json:"exit_code"`
	Reason     Reason     `json:"reason"`
	Error      string     `json:"error,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    time.Time  `json:"ended_at"`
	DurationMS int64      `json:"duration_ms"`
	Usage      Usage      `json:"usage"`
	Limits     Limits     `json:"limits"`
	Outputs    []Output   `json:"outputs"`
	Rejected   []Rejected `json:"rejected"`
	// Stdout and Stderr name the log files inside the quarantine
	// directory; a result names no host path.
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// LogsTruncated: stdout or stderr reached Limits.LogBytes and the rest
	// was dropped.
	LogsTruncated bool `json:"logs_truncated,omitempty"`
	Recovered     bool `json:"recovered,omitempty"` // finished by a later process
	// Timings is where the time went, in milliseconds.
	Timings Timings `json:"timings"`
}

// Timings are the phases of a job, in milliseconds. A job's container is
// deleted while its outputs are collected, after its result is written:
// that time is not here.
type Timings struct {
	Workspace float64 `json:"workspace_ms"` // inputs, code and the output tmpfs laid out
	Prepare   float64 `json:"prepare_ms"`   // container created
	Start     float64 `json:"start_ms"`     // task created and started
	Run       float64 `json:"run_ms"`       // from started to the exit seen
	Collect   float64 `json:"collect_ms"`   // outputs and logs into quarantine
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// Runner takes jobs through their states (JobState): prepare, start, wait
// (enforcing the timeout and the output cap), collect, clean up. It keeps
// each job's record in a Store, so that a Runner started after a crash
// takes every job on from where it was (Recover); a lock per job keeps two
// processes from driving the same one.
type Runner struct {
	exec     Executor
	stateDir string
	store    Store
	history  bool
	defaults Limits
	max      Limits
	code     CodeLimits
	uids     uidLeases
	log      *slog.Logger
	poll     time.Duration
	mountOut func(dir string, size int64, uid uint32) error
	open     dataset.Opener // inputs; the filesystem when nil
}

// Option configures a Runner.
type Option func(*Runner)

// WithLimits sets the default and maximum job limits.
func WithLimits(def, max Limits) Option { return func(r *Runner) { r.defaults, r.max = def, max } }

// WithCodeLimits sets the limits of code bundles.
func WithCodeLimits(l CodeLimits) Option { return func(r *Runner) { r.code = l } }

// WithUIDRange sets the host uids jobs run as and the directory of their
// leases (DefaultUIDLeaseDir when empty). Runners on one host that share a
// range must share the lease directory.
func WithUIDRange(uids UIDRange, leaseDir string) Option {
	return func(r *Runner) {
		if leaseDir == "" {
			leaseDir = DefaultUIDLeaseDir
		}
		r.uids = uidLeases{dir: leaseDir, r: uids}
	}
}

// WithStore sets where job records are kept (by default a FileStore in
// <state-dir>/records).
func WithStore(s Store) Option { return func(r *Runner) { r.store = s } }

// WithHistory keeps the records of finished jobs. Without it a finished
// job's record is removed once nothing else of the job is left: its
// outcome is result.json in its quarantine directory.
func WithHistory() Option { return func(r *Runner) { r.history = true } }

// WithInputOpener sets how job inputs are opened (Input.Path is the name
// given to it): the server reads sealed views from its store this way,
// decrypted as they are read. The local filesystem by default.
func WithInputOpener(open dataset.Opener) Option { return func(r *Runner) { r.open = open } }

// WithLogger sets the operational logger.
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// NewRunner returns a Runner over an executor and a state directory.
func NewRunner(exec Executor, stateDir string, opts ...Option) (*Runner, error) {
	if exec == nil || stateDir == "" {
		return nil, fmt.Errorf("runner needs an executor and a state directory: %w", ErrInvalidArgument)
	}
	r := &Runner{exec: exec, stateDir: stateDir, defaults: DefaultLimits, max: MaxLimits, code: DefaultCodeLimits,
		uids: uidLeases{dir: DefaultUIDLeaseDir, r: DefaultUIDRange}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		poll: 100 * time.Millisecond, mountOut: mountOutput}
	for _, o := range opts {
		o(r)
	}
	if err := r.uids.r.validate(); err != nil {
		return nil, err
	}
	if r.code.Bytes <= 0 || r.code.Files <= 0 || r.code.Depth <= 0 {
		return nil, fmt.Errorf("code limits %+v: every limit must be positive: %w", r.code, ErrInvalidArgument)
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "jobs"), 0o700); err != nil {
		return nil, err
	}
	if r.store == nil {
		fs, err := NewFileStore(filepath.Join(stateDir, "records"))
		if err != nil {
			return nil, err
		}
		r.store = fs
	}
	return r, nil
}

// Run runs a job to its end and collects its outputs into quarantine (a
// directory that must not exist yet). A job that ran and failed is a Result
// with its reason, not an error; an error means the job could not be run
// (nothing of it is left) or its end could not be established.
func (r *Runner) Run(ctx context.Context, job Job, quarantine string) (*Result, error) {
	if job.Runtime == "" {
		job.Runtime = RuntimeRunc
	}
	if err := job.Validate(); err != nil {
		return nil, err
	}
	def := r.defaults
	if job.Runtime == RuntimeGVisor {
		// gVisor's own threads count against the pids limit.
		def.Pids = max(def.Pids, GVisorMinPids)
	}
	lim, err := job.Limits.Resolve(def, r.max)
	if err != nil {
		return nil, err
	}
	job.Limits = lim
	if _, err := os.Stat(quarantine); err == nil {
		return nil, fmt.Errorf("output directory %s already exists: %w", quarantine, ErrInvalidArgument)
	}
	inUse := fmt.Errorf("job id %s is already in use (sluice sandbox recover finishes old jobs): %w", job.ID, ErrInvalidArgument)
	lock, err := lockJob(r.stateDir, job.ID)
	if errors.Is(err, errLocked) {
		return nil, inUse
	} else if err != nil {
		return nil, err
	}
	defer lock.release()
	if _, err := r.store.Get(ctx, job.ID); err == nil {
		return nil, inUse
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if _, err := r.exec.Inspect(ctx, job.ID); err == nil {
		return nil, inUse
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// Before the inputs are copied into a workspace: a missing image or
	// runtime is found without that work.
	if err := r.exec.Check(ctx, job); err != nil {
		return nil, err
	}
	rec := &JobRecord{ID: job.ID, State: JobQueued, Job: job, Quarantine: quarantine, UpdatedAt: time.Now()}
	if err := r.store.Put(ctx, rec); err != nil {
		return nil, err
	}
	return r.drive(ctx, rec)
}

// drive takes a job from its state to a final one, one state's work at a
// time, then forgets it (unless the Runner keeps history). An error is a
// job that could not be prepared (it failed, and nothing of it is left) or
// whose record could not be written.
func (r *Runner) drive(ctx context.Context, rec *JobRecord) (*Result, error) {
	var err error
	for err == nil && !rec.State.Final() {
		switch rec.State {
		case JobQueued:
			err = r.prepare(ctx, rec)
		case JobPreparing: // only after a crash: the task never started
			err = r.abandon(ctx, rec, errors.New("sluice stopped while the job was being prepared"))
		case JobRunning:
			err = r.watch(ctx, rec)
		case JobFinishing:
			err = r.finish(context.WithoutCancel(ctx), rec)
		}
	}
	if rec.State.Final() && !r.history {
		if derr := r.store.Delete(context.WithoutCancel(ctx), rec.ID); derr != nil {
			r.log.Error("forgetting the job", "job", rec.ID, "err", derr)
		}
	}
	return rec.Result, err
}

// put persists a transition; a record that cannot be written stops the job
// where it is (the next Recover takes it on).
func (r *Runner) put(ctx context.Context, rec *JobRecord, to JobState) error {
	if err := transition(rec, to); err != nil {
		return err
	}
	if err := r.store.Put(context.WithoutCancel(ctx), rec); err != nil {
		return fmt.Errorf("job %s: recording %s: %w", rec.ID, to, err)
	}
	return nil
}

// prepare makes the workspace, leases the uids and creates the container
// (preparing), then starts the task (running). A job that cannot be
// prepared fails with nothing left; one whose task cannot start goes on to
// finishing with reason error.
func (r *Runner) prepare(ctx context.Context, rec *JobRecord) error {
	job := rec.Job
	rec.StartedAt = time.Now()
	if err := r.put(ctx, rec, JobPreparing); err != nil {
		return err
	}
	t := time.Now()
	inst, err := r.createWorkspace(ctx, &job)
	if err != nil {
		return r.fail(ctx, rec, nil, err)
	}
	rec.Instance = inst
	rec.Timings.Workspace = msSince(t)
	// The deadline is known before the container is made: the executor
	// labels the container with it.
	inst.Deadline = rec.StartedAt.Add(job.Limits.Timeout)
	t = time.Now()
	if err := r.exec.Prepare(ctx, inst); err != nil {
		return r.fail(ctx, rec, inst, err)
	}
	rec.Timings.Prepare = msSince(t)
	if err := r.put(ctx, rec, JobRunning); err != nil {
		r.discard(context.WithoutCancel(ctx), rec.ID, inst)
		return err
	}
	r.log.Info("starting", "job", job.ID, "image", job.Image, "runtime", job.Runtime)
	rec.attached = true
	t = time.Now()
	// Started whatever ctx says meanwhile: a job cancelled while its task
	// starts is stopped by supervise (reason stopped), not failed halfway.
	if err := r.exec.Start(context.WithoutCancel(ctx), inst); err != nil {
		rec.Exit, rec.Reason, rec.Error = &Exit{Code: -1, At: time.Now()}, ReasonError, err.Error()
		return r.put(ctx, rec, JobFinishing)
	}
	rec.Timings.Start = msSince(t)
	return nil
}

// fail ends a job that could not be prepared: what was made for it goes,
// it is recorded failed, and err is returned to the caller of Run.
func (r *Runner) fail(ctx context.Context, rec *JobRecord, inst *Instance, err error) error {
	if inst != nil {
		r.discard(context.WithoutCancel(ctx), rec.ID, inst)
	}
	rec.Reason, rec.Error = ReasonError, r.scrub(err.Error(), rec.Quarantine)
	if perr := r.put(ctx, rec, JobFailed); perr != nil {
		return errors.Join(err, perr)
	}
	return err
}

// abandon ends a job found preparing after a crash: its task never
// started, so it is removed and failed, with a result saying why.
func (r *Runner) abandon(ctx context.Context, rec *JobRecord, why error) error {
	r.discard(context.WithoutCancel(ctx), rec.ID, rec.Instance)
	rec.Exit, rec.Reason, rec.Error = &Exit{Code: -1, At: time.Now()}, ReasonError, why.Error()
	res := r.result(rec)
	if err := os.MkdirAll(rec.Quarantine, 0o700); err == nil {
		writeJSON(filepath.Join(rec.Quarantine, wsResult), res)
	}
	rec.Result = res
	return r.put(ctx, rec, JobFailed)
}

// discard removes what was made for a job that never started: its
// container, its workspace and, once both are gone, the uid leases of its
// instance. (Without a recorded instance, a lease its workspace held goes
// stale with the workspace and is taken over.)
func (r *Runner) discard(ctx context.Context, id string, inst *Instance) {
	cleanErr := r.exec.Cleanup(ctx, id)
	if removeWorkspace(JobDir(r.stateDir, id)) == nil && cleanErr == nil && inst != nil {
		r.uids.releaseFor(inst)
	}
}

// watch waits for a running job's task to end and records how (finishing).
// A task this process did not start is looked at first: after a crash it
// may have ended, or never started, or be gone.
func (r *Runner) watch(ctx context.Context, rec *JobRecord) error {
	if !rec.attached {
		st, err := r.exec.Inspect(ctx, rec.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			rec.Exit, rec.Reason, rec.Error = &Exit{Code: -1}, ReasonError, "the job's container disappeared while sluice was not running"
			return r.put(ctx, rec, JobFinishing)
		case err != nil:
			return err
		case st.State == StateStopped:
			rec.Exit = st.Exit
			rec.Reason = r.reason(rec, *st.Exit, "")
			if st.Exit.At.After(rec.Instance.Deadline) && rec.Reason == ReasonExited {
				rec.Reason = ReasonTimeout
			}
			return r.put(ctx, rec, JobFinishing)
		case st.State != StateRunning:
			rec.Exit, rec.Reason, rec.Error = &Exit{Code: -1}, ReasonError, "the job was created but never started"
			return r.put(ctx, rec, JobFinishing)
		}
		r.log.Info("reattaching", "job", rec.ID, "deadline", rec.Instance.Deadline)
	}
	exit, reason, err := r.supervise(ctx, rec)
	if err != nil {
		return err
	}
	rec.Exit, rec.Reason = &exit, reason
	return r.put(ctx, rec, JobFinishing)
}

// reason is why a task ended: the runtime failed, a limit the supervisor
// stopped it for (stoppedFor), the OOM killer, a full output, or its own
// exit. It records a runtime failure's message in the record.
func (r *Runner) reason(rec *JobRecord, exit Exit, stoppedFor Reason) Reason {
	switch {
	case exit.RuntimeError != "":
		rec.Error = exit.RuntimeError
		return ReasonRuntime
	case stoppedFor != "":
		return stoppedFor
	case exit.OOMKilled:
		return ReasonOOM
	case outputOver(rec.Instance.Mounts.Output, rec.Job.Limits.OutputBytes):
		return ReasonOutputLimit
	}
	return ReasonExited
}

// supervise waits for the task, stopping it at the deadline, when the
// output directory fills or when ctx ends, and says how it ended.
func (r *Runner) supervise(ctx context.Context, rec *JobRecord) (Exit, Reason, error) {
	inst := rec.Instance
	id := inst.Job.ID
	type waited struct {
		exit Exit
		err  error
	}
	done := make(chan waited, 1)
	since := time.Now()
	go func() {
		// Waiting outlives the caller's context: a cancelled run stops the
		// job and still collects it.
		e, err := r.exec.Wait(context.WithoutCancel(ctx), inst)
		done <- waited{e, err}
	}()
	cancelled := ctx.Done()
	deadline := time.NewTimer(time.Until(inst.Deadline))
	defer deadline.Stop()
	tick := time.NewTicker(r.poll)
	defer tick.Stop()
	// The tmpfs's own accounting is read at every tick; apparent sizes,
	// which take a walk of the output tree, once a second.
	walkEvery := max(1, int(time.Second/r.poll))
	ticks := 0
	var stoppedFor Reason
	stop := func(why Reason) {
		if stoppedFor == "" {
			stoppedFor = why
			r.log.Info("stopping", "job", id, "reason", why)
			if err := r.exec.Stop(context.WithoutCancel(ctx), id); err != nil {
				r.log.Warn("stop failed", "job", id, "err", err)
			}
		}
	}
	for {
		select {
		case w := <-done:
			rec.Timings.Run = msSince(since)
			if w.err != nil {
				return Exit{}, "", fmt.Errorf("job %s: waiting for the task: %w", id, w.err)
			}
			return w.exit, r.reason(rec, w.exit, stoppedFor), nil
		case <-deadline.C:
			stop(ReasonTimeout)
		case <-tick.C:
			ticks++
			if outputFull(inst.Mounts.Output) || ticks%walkEvery == 0 && apparentOver(inst.Mounts.Output, inst.Job.Limits.OutputBytes) {
				stop(ReasonOutputLimit)
			}
		case <-cancelled:
			cancelled = nil
			stop(ReasonStopped)
		}
	}
}

// result is the Result of a record's job as far as it is known.
func (r *Runner) result(rec *JobRecord) *Result {
	job := rec.Job
	exit := Exit{Code: -1}
	if rec.Exit != nil {
		exit = *rec.Exit
	}
	res := &Result{
		JobID: job.ID, Image: job.Image, Runtime: job.Runtime, ExitCode: exit.Code, Reason: rec.Reason,
		StartedAt: rec.StartedAt, EndedAt: exit.At, Limits: job.Limits, Usage: exit.Usage, Timings: rec.Timings,
		Outputs: []Output{}, Rejected: []Rejected{}, Stdout: "stdout", Stderr: "stderr", Recovered: !rec.attached,
	}
	if res.EndedAt.IsZero() {
		res.EndedAt = time.Now()
	}
	if !rec.StartedAt.IsZero() {
		res.DurationMS = res.EndedAt.Sub(rec.StartedAt).Milliseconds()
	}
	if rec.Error != "" {
		res.Error = r.scrub(rec.Error, rec.Quarantine)
	}
	return res
}

// finish collects outputs and logs into quarantine, writes the result,
// records the job done (or failed: it could not run, or its runtime
// failed), and removes the container, the workspace and the uid leases.
// It can be done again after a crash: a partial collection is redone.
func (r *Runner) finish(ctx context.Context, rec *JobRecord) error {
	inst := rec.Instance
	job := rec.Job
	res := r.result(rec)
	t := time.Now()
	// The task has ended: its container goes while its outputs are
	// collected (nothing can write them any more).
	cleaned := make(chan error, 1)
	go func() { cleaned <- r.exec.Cleanup(ctx, job.ID) }()
	out := filepath.Join(rec.Quarantine, "out")
	errs := []error{os.RemoveAll(out)} // what a crashed collection left
	outs, rejected, err := Collect(inst.Mounts.Output, out, job.Limits.OutputBytes)
	errs = append(errs, err)
	res.Outputs, res.Rejected = append(res.Outputs, outs...), append(res.Rejected, rejected...)
	for _, f := range []string{inst.Stdout, inst.Stderr} {
		if fi, err := os.Stat(f); err == nil && fi.Size() >= job.Limits.LogBytes {
			res.LogsTruncated = true
		}
	}
	errs = append(errs, moveFile(inst.Stdout, filepath.Join(rec.Quarantine, res.Stdout)), moveFile(inst.Stderr, filepath.Join(rec.Quarantine, res.Stderr)))
	if err := errors.Join(errs...); err != nil && res.Error == "" {
		res.Error = r.scrub("collecting outputs: "+err.Error(), rec.Quarantine)
		res.Reason = ReasonError
	}
	res.Timings.Collect = msSince(t)
	if err := writeJSON(filepath.Join(rec.Quarantine, wsResult), res); err != nil {
		r.log.Error("writing result", "job", job.ID, "err", err)
	}
	rec.Result = res
	final := JobDone
	if res.Reason == ReasonError || res.Reason == ReasonRuntime {
		final = JobFailed
	}
	perr := r.put(ctx, rec, final)
	// The task's processes, and so its mounts of the workspace, are gone:
	// the workspace goes while containerd deletes the task.
	err = removeWorkspace(JobDir(r.stateDir, job.ID))
	cleanErr := <-cleaned
	if cleanErr != nil {
		r.log.Error("cleanup", "job", job.ID, "err", cleanErr)
	}
	switch {
	case err != nil:
		r.log.Error("removing workspace", "job", job.ID, "err", err)
	case cleanErr == nil:
		// Only a job whose container is gone hands its uids back. (Otherwise
		// the leases go stale with the workspace, and sluice sandbox
		// recover removes containers that have no record.)
		if err := r.uids.releaseFor(inst); err != nil {
			r.log.Error("releasing the job uids", "job", job.ID, "uid", inst.UID, "err", err)
		}
	}
	r.log.Info("finished", "job", job.ID, "reason", res.Reason, "exit_code", res.ExitCode, "outputs", len(res.Outputs), "rejected", len(res.Rejected))
	return perr
}

// Recover takes on every job an earlier process left behind, each in its
// own goroutine (a day-long job does not hold up the others): a job that
// was being prepared is removed and failed; a running one within its
// deadline is waited for (reattached), one past it is stopped with reason
// timeout, a stopped one is collected; a finished one is cleaned up. Jobs
// another live process drives are left to it. Then Sweep removes what no
// record names.
func (r *Runner) Recover(ctx context.Context) ([]*Result, error) {
	recs, err := r.store.List(ctx)
	errs := []error{err}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		results []*Result
	)
	for _, rec := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Resume(ctx, rec.ID)
			if errors.Is(err, ErrBusy) {
				r.log.Info("another process drives the job", "job", rec.ID)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
			if res != nil {
				results = append(results, res)
			}
		}()
	}
	wg.Wait()
	errs = append(errs, r.Sweep(ctx))
	sort.Slice(results, func(i, j int) bool { return results[i].JobID < results[j].JobID })
	return results, errors.Join(errs...)
}

// Resume takes on one job an earlier process left behind, as Recover does,
// in the caller's goroutine: the caller can stop it with ctx (the job then
// ends stopped) and bound how many run at once. A job another live
// process drives is ErrBusy; an unknown one ErrNotFound.
func (r *Runner) Resume(ctx context.Context, id string) (*Result, error) {
	lock, err := lockJob(r.stateDir, id)
	if errors.Is(err, errLocked) {
		return nil, fmt.Errorf("job %s: another process drives it: %w", id, ErrBusy)
	} else if err != nil {
		return nil, err
	}
	defer lock.release()
	rec, err := r.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.recoverJob(ctx, rec)
}

// Sweep removes the containers and workspaces of this runner (its state
// directory) that no record names: what a process that crashed before it
// recorded a job, or after it forgot one, left behind. Jobs with records,
// and the containers of other runners in the same namespace, are not
// touched.
func (r *Runner) Sweep(ctx context.Context) error {
	recs, err := r.store.List(ctx)
	if err != nil {
		return err // not knowing every record, it removes nothing
	}
	known := map[string]bool{}
	for _, rec := range recs {
		known[rec.ID] = true
	}
	ids, err := r.exec.List(ctx)
	if err != nil {
		return err
	}
	owner, err := filepath.Abs(r.stateDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if known[id] {
			continue
		}
		// Another runner's (another state directory's) containers are its
		// own; one made before containers named their owner is removed.
		if st, err := r.exec.Inspect(ctx, id); err == nil && st.Owner != "" && st.Owner != owner {
			continue
		}
		r.log.Warn("removing a container no record names", "job", id)
		errs = append(errs, r.exec.Stop(ctx, id), r.exec.Cleanup(ctx, id))
	}
	entries, _ := os.ReadDir(filepath.Join(r.stateDir, "jobs"))
	for _, e := range entries {
		if !known[e.Name()] {
			r.log.Warn("removing a workspace no record names", "job", e.Name())
			errs = append(errs, removeWorkspace(JobDir(r.stateDir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// recoverJob drives a job found in the store to its end; a job already
// final has what is left of it removed.
func (r *Runner) recoverJob(ctx context.Context, rec *JobRecord) (*Result, error) {
	if rec.State.Final() {
		if rec.Instance != nil && rec.State == JobDone {
			r.discard(ctx, rec.ID, rec.Instance) // it was recorded before the cleanup
		}
		if !r.history {
			return nil, r.store.Delete(ctx, rec.ID)
		}
		return nil, nil
	}
	return r.drive(ctx, rec)
}

// runtimePaths are where containerd and its shims keep bundles and
// snapshots; runtime errors quote them.
var runtimePaths = regexp.MustCompile(`/(?:run|var/lib)/containerd[^\s"':,;)]*`)

// scrub takes the host paths out of a message that goes into a job's
// result: the state directory, the quarantine directory and containerd's.
func (r *Runner) scrub(msg, quarantine string) string {
	for _, p := range []struct{ path, as string }{{r.stateDir, "<state>"}, {quarantine, "<quarantine>"}} {
		if abs, err := filepath.Abs(p.path); err == nil {
			msg = strings.ReplaceAll(msg, abs, p.as)
		}
		msg = strings.ReplaceAll(msg, p.path, p.as)
	}
	return runtimePaths.ReplaceAllString(msg, "<runtime>")
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o600)
}

// moveFile moves a file into place, copying across filesystems. A file
// already moved (by a collection that a crash cut short) is left there.
func moveFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Lstat(dst); err == nil {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return createFrom(dst, 0o600, in)
}
