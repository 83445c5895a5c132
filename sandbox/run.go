package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

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

// Runner takes jobs through their life: prepare, start, wait (enforcing the
// timeout and the output cap), collect, clean up. A Runner owns a state
// directory; a Runner started on the same directory after a crash finds the
// jobs the crashed one left (Recover).
type Runner struct {
	exec     Executor
	stateDir string
	defaults Limits
	max      Limits
	code     CodeLimits
	uids     uidLeases
	log      *slog.Logger
	poll     time.Duration
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

// WithLogger sets the operational logger.
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// NewRunner returns a Runner over an executor and a state directory.
func NewRunner(exec Executor, stateDir string, opts ...Option) (*Runner, error) {
	if exec == nil || stateDir == "" {
		return nil, fmt.Errorf("runner needs an executor and a state directory: %w", ErrInvalidArgument)
	}
	r := &Runner{exec: exec, stateDir: stateDir, defaults: DefaultLimits, max: MaxLimits, code: DefaultCodeLimits, uids: uidLeases{dir: DefaultUIDLeaseDir, r: DefaultUIDRange}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), poll: 100 * time.Millisecond}
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
	return r, nil
}

// record is what a Runner persists about a running job, for recovery.
type record struct {
	Instance   *Instance `json:"instance"`
	Quarantine string    `json:"quarantine"`
	StartedAt  time.Time `json:"started_at"`
	Timings    Timings   `json:"timings"` // up to the start
}

// Run runs a job to its end and collects its outputs into quarantine (a
// directory that must not exist yet). A job that ran and failed is a Result
// with its reason, not an error; an error means the job could not be run
// or its end could not be established.
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
	if _, err := r.exec.Inspect(ctx, job.ID); err == nil {
		return nil, fmt.Errorf("job id %s is already in use (sluice sandbox recover finishes old jobs): %w", job.ID, ErrInvalidArgument)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// Before the inputs are copied into a workspace: a missing image or
	// runtime is found without that work.
	if err := r.exec.Check(ctx, job); err != nil {
		return nil, err
	}
	log := r.log.With("job", job.ID)
	t := time.Now()
	inst, err := createWorkspace(ctx, r.stateDir, &job, r.code, &r.uids)
	if err != nil {
		return nil, err
	}
	dir := JobDir(r.stateDir, job.ID)
	rec := &record{Instance: inst, Quarantine: quarantine, Timings: Timings{Workspace: msSince(t)}}
	// The deadline is known before the container is made: the executor
	// labels the container with it.
	t = time.Now()
	rec.StartedAt = t
	inst.Deadline = rec.StartedAt.Add(lim.Timeout)
	if err := r.exec.Prepare(ctx, inst); err != nil {
		r.discard(context.WithoutCancel(ctx), inst)
		return nil, err
	}
	rec.Timings.Prepare = msSince(t)
	if err := writeJSON(filepath.Join(dir, wsInstance), rec); err != nil {
		r.discard(context.WithoutCancel(ctx), inst)
		return nil, err
	}
	log.Info("starting", "image", job.Image, "runtime", job.Runtime)
	t = time.Now()
	if err := r.exec.Start(ctx, inst); err != nil {
		res := r.finish(context.WithoutCancel(ctx), rec, Exit{Code: -1, At: time.Now()}, ReasonError, err)
		return res, nil
	}
	rec.Timings.Start = msSince(t)
	return r.supervise(ctx, rec)
}

// discard removes what was made for a job that never started: its
// container, its workspace and, once both are gone, its uid lease.
func (r *Runner) discard(ctx context.Context, inst *Instance) {
	cleanErr := r.exec.Cleanup(ctx, inst.Job.ID)
	if removeWorkspace(JobDir(r.stateDir, inst.Job.ID)) == nil && cleanErr == nil {
		r.uids.releaseFor(inst)
	}
}

// supervise waits for the task, stopping it at the deadline or when the
// output directory fills, then finishes the job.
func (r *Runner) supervise(ctx context.Context, rec *record) (*Result, error) {
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
	var reason Reason
	stop := func(why Reason) {
		if reason == "" {
			reason = why
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
				return nil, fmt.Errorf("job %s: waiting for the task: %w", id, w.err)
			}
			var runErr error
			switch {
			case w.exit.RuntimeError != "":
				reason, runErr = ReasonRuntime, errors.New(w.exit.RuntimeError)
			case reason != "":
			case w.exit.OOMKilled:
				reason = ReasonOOM
			case outputOver(inst.Mounts.Output, inst.Job.Limits.OutputBytes):
				reason = ReasonOutputLimit
			default:
				reason = ReasonExited
			}
			return r.finish(context.WithoutCancel(ctx), rec, w.exit, reason, runErr), nil
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

// finish collects outputs and logs into quarantine, writes the result and
// removes the container and the workspace.
func (r *Runner) finish(ctx context.Context, rec *record, exit Exit, reason Reason, runErr error) *Result {
	inst := rec.Instance
	job := inst.Job
	dir := JobDir(r.stateDir, job.ID)
	res := &Result{
		JobID: job.ID, Image: job.Image, Runtime: job.Runtime, ExitCode: exit.Code, Reason: reason,
		StartedAt: rec.StartedAt, EndedAt: exit.At, Limits: job.Limits,
		Outputs: []Output{}, Rejected: []Rejected{},
	}
	if res.EndedAt.IsZero() {
		res.EndedAt = time.Now()
	}
	if !rec.StartedAt.IsZero() {
		res.DurationMS = res.EndedAt.Sub(rec.StartedAt).Milliseconds()
	}
	if runErr != nil {
		res.Error = r.scrub(runErr.Error(), rec.Quarantine)
	}
	res.Usage = exit.Usage
	res.Timings = rec.Timings
	t := time.Now()
	// The task has ended: its container goes while its outputs are
	// collected (nothing can write them any more).
	cleaned := make(chan error, 1)
	go func() { cleaned <- r.exec.Cleanup(ctx, job.ID) }()
	var errs []error
	outs, rejected, err := Collect(inst.Mounts.Output, filepath.Join(rec.Quarantine, "out"), job.Limits.OutputBytes)
	errs = append(errs, err)
	res.Outputs, res.Rejected = append(res.Outputs, outs...), append(res.Rejected, rejected...)
	res.Stdout, res.Stderr = "stdout", "stderr"
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
	// The task's processes, and so its mounts of the workspace, are gone:
	// the workspace goes while containerd deletes the task.
	err = removeWorkspace(dir)
	cleanErr := <-cleaned
	if cleanErr != nil {
		r.log.Error("cleanup", "job", job.ID, "err", cleanErr)
	}
	switch {
	case err != nil:
		r.log.Error("removing workspace", "job", job.ID, "err", err)
	case cleanErr == nil:
		// Only a job whose container is gone hands its uid back. (Otherwise
		// the lease goes stale with the workspace, and sluice sandbox
		// recover removes containers that have no workspace.)
		if err := r.uids.releaseFor(inst); err != nil {
			r.log.Error("releasing the job uids", "job", job.ID, "uid", inst.UID, "err", err)
		}
	}
	r.log.Info("finished", "job", job.ID, "reason", res.Reason, "exit_code", res.ExitCode, "outputs", len(res.Outputs), "rejected", len(res.Rejected))
	return res
}

// Recover finishes every job an earlier process left behind: a running job
// within its deadline is waited for (reattached), one past it is stopped
// with reason timeout, a stopped one is collected; then its container,
// snapshot and workspace are removed. Containers with no workspace are
// removed too.
func (r *Runner) Recover(ctx context.Context) ([]*Result, error) {
	ids, err := r.exec.List(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(r.stateDir, "jobs"))
	var results []*Result
	var errs []error
	for _, e := range entries {
		id := e.Name()
		known[id] = true
		res, err := r.recoverJob(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if res != nil {
			res.Recovered = true
			results = append(results, res)
		}
	}
	for _, id := range ids {
		if !known[id] {
			r.log.Warn("removing a container with no workspace", "job", id)
			errs = append(errs, r.exec.Stop(ctx, id), r.exec.Cleanup(ctx, id))
		}
	}
	return results, errors.Join(errs...)
}

func (r *Runner) recoverJob(ctx context.Context, id string) (*Result, error) {
	dir := JobDir(r.stateDir, id)
	var rec record
	data, err := os.ReadFile(filepath.Join(dir, wsInstance))
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil || rec.Instance == nil {
		// Never started: nothing to collect.
		r.log.Warn("removing a job that never started", "job", id)
		return nil, errors.Join(r.exec.Stop(ctx, id), r.exec.Cleanup(ctx, id), removeWorkspace(dir))
	}
	st, err := r.exec.Inspect(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return r.finish(ctx, &rec, Exit{Code: -1}, ReasonError, errors.New("the job's container disappeared while sluice was not running")), nil
	case err != nil:
		return nil, err
	}
	switch st.State {
	case StateStopped:
		reason := ReasonExited
		if st.Exit.RuntimeError != "" {
			return r.finish(ctx, &rec, *st.Exit, ReasonRuntime, errors.New(st.Exit.RuntimeError)), nil
		}
		if st.Exit.OOMKilled {
			reason = ReasonOOM
		} else if outputOver(rec.Instance.Mounts.Output, rec.Instance.Job.Limits.OutputBytes) {
			reason = ReasonOutputLimit
		}
		if st.Exit.At.After(rec.Instance.Deadline) {
			reason = ReasonTimeout
		}
		return r.finish(ctx, &rec, *st.Exit, reason, nil), nil
	case StateRunning:
		r.log.Info("reattaching", "job", id, "deadline", rec.Instance.Deadline)
		return r.supervise(ctx, &rec)
	}
	// Created but never started.
	return r.finish(ctx, &rec, Exit{Code: -1}, ReasonError, errors.New("the job was created but never started")), nil
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

// moveFile moves a file into place, copying across filesystems.
func moveFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return createFrom(dst, 0o600, in)
}
