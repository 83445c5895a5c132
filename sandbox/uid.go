package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/internal/atomicfile"
)

// UIDRange is the block of host uids jobs run as. Every job holds one of
// them alone for as long as it exists (its gid is the same number), so
// concurrent jobs never share what the kernel counts per user: inotify
// instances and watches, processes (RLIMIT_NPROC), message queues, keys.
// The range must not overlap any uid of the host, its users or their
// subordinate ranges (/etc/subuid).
type UIDRange struct {
	First uint32 `json:"first"`
	Count uint32 `json:"count"`
}

// MinJobUID is the lowest uid a range may start at: far above system
// accounts, users and the usual subordinate ranges.
const MinJobUID = 1 << 20

// DefaultUIDRange is 65536 uids starting at 1,900,000,000.
var DefaultUIDRange = UIDRange{First: 1_900_000_000, Count: 65536}

// DefaultUIDLeaseDir holds the leases of every Runner on the host. It is
// on /run, so leases end with a reboot, as the containers do.
const DefaultUIDLeaseDir = "/run/sluice/uids"

func (r UIDRange) validate() error {
	if r.First < MinJobUID || r.Count == 0 || uint64(r.First)+uint64(r.Count) > 1<<31 {
		return fmt.Errorf("job uid range %d+%d: start at %d or above, hold at least one uid and end below 2^31: %w", r.First, r.Count, MinJobUID, ErrInvalidArgument)
	}
	return nil
}

// uidLeases hands out uids of a range, one per job, across every process
// on the host that uses the same lease directory. A lease is a file named
// by the uid that holds its job's state directory and ID. A lease whose
// job has no workspace any more is stale and is taken over: a job's
// workspace is created before its lease and removed before it is released.
type uidLeases struct {
	dir string
	r   UIDRange
}

type lease struct {
	StateDir string `json:"state_dir"`
	Job      string `json:"job"`
}

// acquire leases a free uid to the job whose workspace is JobDir(stateDir, job).
func (l *uidLeases) acquire(stateDir, job string) (uint32, error) {
	unlock, err := l.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return 0, err
	}
	data, err := json.Marshal(lease{StateDir: abs, Job: job})
	if err != nil {
		return 0, err
	}
	h := fnv.New32a()
	h.Write([]byte(job))
	start := h.Sum32() % l.r.Count
	for i := range l.r.Count {
		uid := l.r.First + (start+i)%l.r.Count
		path := l.path(uid)
		if held, err := os.ReadFile(path); err == nil {
			var old lease
			if json.Unmarshal(held, &old) == nil && old.Job != "" {
				if _, err := os.Stat(JobDir(old.StateDir, old.Job)); !errors.Is(err, fs.ErrNotExist) {
					continue // in use
				}
			}
			if err := os.Remove(path); err != nil {
				return 0, err
			}
		}
		// Whole or not at all: a lease cut short by a crash would read as
		// stale and be taken over while its job still runs.
		if err := atomicfile.WriteFileUnsynced(path, data, 0o600); err != nil {
			return 0, err
		}
		return uid, nil
	}
	return 0, fmt.Errorf("all %d job uids from %d are in use by running jobs: %w", l.r.Count, l.r.First, ErrLimit)
}

// leaseFor leases the uids a job runs as: its own and, under gVisor, a
// second one for the sandbox's own processes (the sentry and the gofer).
func (l *uidLeases) leaseFor(stateDir string, job *Job) (uid, sandboxUID uint32, err error) {
	uid, err = l.acquire(stateDir, job.ID)
	if err != nil || job.Runtime != RuntimeGVisor {
		return uid, 0, err
	}
	sandboxUID, err = l.acquire(stateDir, job.ID)
	if err != nil {
		l.release(uid, job.ID)
		return 0, 0, err
	}
	return uid, sandboxUID, nil
}

// releaseFor ends the leases of an instance's uids.
func (l *uidLeases) releaseFor(inst *Instance) error {
	err := l.release(inst.UID, inst.Job.ID)
	if inst.SandboxUID != 0 {
		err = errors.Join(err, l.release(inst.SandboxUID, inst.Job.ID))
	}
	return err
}

// release ends the job's lease of uid; a lease held by another job stays.
func (l *uidLeases) release(uid uint32, job string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	var held lease
	data, err := os.ReadFile(l.path(uid))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if json.Unmarshal(data, &held) == nil && held.Job != job {
		return nil
	}
	return os.Remove(l.path(uid))
}

func (l *uidLeases) path(uid uint32) string {
	return filepath.Join(l.dir, strconv.FormatUint(uint64(uid), 10))
}

// lock takes the lease directory's lock, shared by every process.
func (l *uidLeases) lock() (func(), error) {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(l.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
