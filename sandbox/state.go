package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/internal/atomicfile"
)

// JobState is where a job is in its life. A job only moves forward:
//
//	queued → preparing → running → finishing → done | failed
//
// A state is persisted before its work begins, so that after a crash the
// record says what was under way: preparing (workspace, uids, container;
// no task yet), running (the task may have started), finishing (the task
// has ended; its exit is recorded; outputs are being collected). done is a
// job that ran to an end of its own (its Result says how); failed is one
// that could not run or whose end could not be established.
type JobState string

// Job states.
const (
	JobQueued    JobState = "queued"
	JobPreparing JobState = "preparing"
	JobRunning   JobState = "running"
	JobFinishing JobState = "finishing"
	JobDone      JobState = "done"
	JobFailed    JobState = "failed"
)

// Final reports whether nothing more happens to a job in this state.
func (s JobState) Final() bool { return s == JobDone || s == JobFailed }

// next is every state's successors: the only transitions there are.
var next = map[JobState][]JobState{
	JobQueued:    {JobPreparing, JobFailed},
	JobPreparing: {JobRunning, JobFailed},
	JobRunning:   {JobFinishing, JobFailed},
	JobFinishing: {JobDone, JobFailed},
}

// JobRecord is what a Store keeps of a job: enough to take it on from
// where it is after a crash. It holds no data values.
type JobRecord struct {
	ID         string    `json:"id"`
	State      JobState  `json:"state"`
	Job        Job       `json:"job"` // validated, limits resolved
	Quarantine string    `json:"quarantine"`
	Instance   *Instance `json:"instance,omitempty"`  // from preparing on
	StartedAt  time.Time `json:"started_at,omitzero"` // when preparing began
	Timings    Timings   `json:"timings"`             // up to the start
	Exit       *Exit     `json:"exit,omitempty"`      // from finishing on
	Reason     Reason    `json:"reason,omitempty"`    // from finishing on
	Error      string    `json:"error,omitempty"`     // why it failed, or how its runtime did
	Result     *Result   `json:"result,omitempty"`    // done or failed, when one was written
	UpdatedAt  time.Time `json:"updated_at,omitzero"` // last transition

	// attached: this process started the task (so it need not be looked
	// at before it is waited for).
	attached bool
}

// Store persists job records. Put writes a record whole (a reader sees the
// old one or the new one); Get of an unknown job is ErrNotFound.
type Store interface {
	Put(ctx context.Context, rec *JobRecord) error
	Get(ctx context.Context, id string) (*JobRecord, error)
	List(ctx context.Context) ([]*JobRecord, error)
	Delete(ctx context.Context, id string) error
}

// transition moves rec to state, or says why it cannot.
func transition(rec *JobRecord, to JobState) error {
	for _, s := range next[rec.State] {
		if s == to {
			rec.State, rec.UpdatedAt = to, time.Now()
			return nil
		}
	}
	return fmt.Errorf("job %s: no transition from %s to %s", rec.ID, rec.State, to)
}

// FileStore keeps each record as a JSON file in a directory, replaced by
// rename: a record survives a crash of the process. (It is not synced to
// disk: a power loss ends the jobs with the records. A job's result.json
// is synced.)
type FileStore struct{ dir string }

var _ Store = (*FileStore)(nil)

// NewFileStore keeps records in dir.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) path(id string) string { return filepath.Join(s.dir, id+".json") }

// Put writes the record.
func (s *FileStore) Put(_ context.Context, rec *JobRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFileUnsynced(s.path(rec.ID), append(data, '\n'), 0o600)
}

// Get reads a record.
func (s *FileStore) Get(_ context.Context, id string) (*JobRecord, error) {
	data, err := os.ReadFile(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var rec JobRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("job %s: record: %w", id, err)
	}
	return &rec, nil
}

// List reads every record; one that cannot be read is an error, after the
// others.
func (s *FileStore) List(ctx context.Context) ([]*JobRecord, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []*JobRecord
	var errs []error
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		rec, err := s.Get(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, rec)
	}
	return out, errors.Join(errs...)
}

// Delete removes a record; an unknown one is no error.
func (s *FileStore) Delete(_ context.Context, id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// jobLock is held by the one process that takes a job through its states.
// It is an flock on a file of the state directory: it ends with the
// process, so a job whose process died can be taken on by another.
type jobLock struct{ f *os.File }

// errLocked: another process holds the job.
var errLocked = errors.New("held by another process")

// lockJob takes the job's lock without waiting.
func lockJob(stateDir, id string) (*jobLock, error) {
	dir := filepath.Join(stateDir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, id)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("job %s: %w", id, errLocked)
			}
			return nil, err
		}
		// The holder before may have removed the file between our open and
		// our lock: then we hold a lock nobody else can see. Try again.
		var held, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &named) == nil && held.Ino == named.Ino && held.Dev == named.Dev {
			return &jobLock{f: f}, nil
		}
		f.Close()
	}
}

// release removes the lock file and lets the lock go.
func (l *jobLock) release() {
	os.Remove(l.f.Name())
	l.f.Close()
}
