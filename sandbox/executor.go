package sandbox

import (
	"context"
	"time"
)

// Reason says why a job ended.
type Reason string

// Reasons.
const (
	ReasonExited      Reason = "exited"        // the command ended by itself
	ReasonTimeout     Reason = "timeout"       // killed at the wall-clock limit
	ReasonOOM         Reason = "oom"           // killed by the kernel at the memory limit
	ReasonOutputLimit Reason = "output_limit"  // killed when /data/out filled up
	ReasonStopped     Reason = "stopped"       // stopped on request (or on recovery)
	ReasonRuntime     Reason = "runtime_error" // the sandbox runtime itself failed; the job's own exit is unknown
	ReasonError       Reason = "error"         // could not run
)

// Mounts are the host paths a job's container binds.
type Mounts struct {
	Inputs string // → /data/in, read-only
	Code   string // → /code, read-only; empty mounts nothing
	Output string // → /data/out, writable (a size-capped tmpfs on the host)
}

// Instance is a job ready for an executor: its validated spec with resolved
// limits and the host paths of its workspace.
type Instance struct {
	Job Job
	// UID is the host uid (and gid) the job runs as, leased to this job
	// alone while it exists (see UIDRange).
	UID uint32
	// SandboxUID is the host uid the runtime's own processes run as when
	// the runtime has any (gVisor's sentry and gofer), leased like UID;
	// zero under runc.
	SandboxUID uint32
	Mounts     Mounts
	Stdout     string // host file receiving stdout
	Stderr     string // host file receiving stderr
	Deadline   time.Time
	// Owner names the Runner the job belongs to (its state directory):
	// runners that share a containerd namespace leave each other's
	// containers alone (Sweep).
	Owner string
}

// Exit is how a task ended.
type Exit struct {
	Code      int
	OOMKilled bool
	At        time.Time
	// RuntimeError says how the runtime failed (a gVisor sandbox that
	// crashed), when it did: then Code is the runtime's, not the job's.
	RuntimeError string
	// Usage is the resource use measured up to the exit.
	Usage Usage
}

// State is where a job's task is.
type State string

// States.
const (
	StateCreated State = "created" // container exists, no task running yet
	StateRunning State = "running"
	StateStopped State = "stopped" // task exited; Exit is known
	StateUnknown State = "unknown"
)

// Status is what an executor knows about a job.
type Status struct {
	ID       string
	State    State
	Exit     *Exit // when stopped
	Deadline time.Time
	Image    string
	Owner    string // Instance.Owner of the job, when the executor knows it
	// Usage is the latest resource reading.
	Usage Usage
}

// Usage is resource use measured by the executor.
type Usage struct {
	MaxMemoryBytes uint64 `json:"max_memory_bytes"`
	CPUNanos       uint64 `json:"cpu_ns"`
}

// Executor runs job containers. Every method is keyed by job ID and
// idempotent: preparing a prepared job, stopping a stopped one or cleaning
// up a job that is gone succeeds.
type Executor interface {
	// Check reports whether the job can run here — its image is imported,
	// its runtime available — before any work is done for it.
	Check(ctx context.Context, job Job) error
	// Prepare creates the job's container and root filesystem snapshot.
	Prepare(ctx context.Context, inst *Instance) error
	// Start creates and starts the job's task, with stdout and stderr going
	// to the instance's files (at most Limits.LogBytes each).
	Start(ctx context.Context, inst *Instance) error
	// Wait blocks until the task exits and reports how. After a restart it
	// reattaches to a task started by an earlier process.
	Wait(ctx context.Context, inst *Instance) (Exit, error)
	// Stop kills every process of the task.
	Stop(ctx context.Context, id string) error
	// Inspect reports the job's state.
	Inspect(ctx context.Context, id string) (Status, error)
	// Cleanup removes the task, the container and its snapshot.
	Cleanup(ctx context.Context, id string) error
	// List returns the IDs of every job container this executor owns.
	List(ctx context.Context) ([]string, error)
}
