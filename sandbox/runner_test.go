package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeExec is an Executor in memory: each job's container is a state, and
// the test says how Prepare, Start and Wait behave.
type fakeExec struct {
	mu         sync.Mutex
	prepareErr error
	startErr   error
	waitErr    error
	exit       Exit          // what Wait reports
	block      bool          // Wait blocks until Stop
	waiting    chan string   // Wait sends the job ID here, when not nil
	release    chan struct{} // …and then waits for it, when not nil
	jobs       map[string]*fakeJob
	calls      []string
}

type fakeJob struct {
	owner   string
	state   State
	exit    *Exit
	stopped chan struct{}
}

func newFake() *fakeExec { return &fakeExec{jobs: map[string]*fakeJob{}} }

func (f *fakeExec) call(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeExec) called(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == s {
			return true
		}
	}
	return false
}

func (f *fakeExec) Check(context.Context, Job) error { return nil }

func (f *fakeExec) Prepare(_ context.Context, inst *Instance) error {
	f.call("prepare " + inst.Job.ID)
	if f.prepareErr != nil {
		return f.prepareErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jobs[inst.Job.ID] == nil {
		f.jobs[inst.Job.ID] = &fakeJob{owner: inst.Owner, state: StateCreated, stopped: make(chan struct{})}
	}
	return nil
}

func (f *fakeExec) Start(_ context.Context, inst *Instance) error {
	f.call("start " + inst.Job.ID)
	if f.startErr != nil {
		return f.startErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[inst.Job.ID].state = StateRunning
	return nil
}

func (f *fakeExec) Wait(_ context.Context, inst *Instance) (Exit, error) {
	id := inst.Job.ID
	f.call("wait " + id)
	if f.waitErr != nil {
		return Exit{}, f.waitErr
	}
	f.mu.Lock()
	j := f.jobs[id]
	f.mu.Unlock()
	if f.waiting != nil {
		f.waiting <- id
	}
	if f.release != nil {
		<-f.release
	}
	exit := f.exit
	if f.block {
		<-j.stopped
		exit = Exit{Code: 137}
	}
	exit.At = time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	j.state, j.exit = StateStopped, &exit
	return exit, nil
}

func (f *fakeExec) Stop(_ context.Context, id string) error {
	f.call("stop " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if j := f.jobs[id]; j != nil && j.state == StateRunning {
		select {
		case <-j.stopped:
		default:
			close(j.stopped)
		}
	}
	return nil
}

func (f *fakeExec) Inspect(_ context.Context, id string) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	if j == nil {
		return Status{}, ErrNotFound
	}
	return Status{ID: id, State: j.state, Exit: j.exit, Owner: j.owner}, nil
}

func (f *fakeExec) Cleanup(_ context.Context, id string) error {
	f.call("cleanup " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.jobs, id)
	return nil
}

func (f *fakeExec) List(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.jobs {
		ids = append(ids, id)
	}
	return ids, nil
}

// fakeRunner is a Runner over f whose output directory is a plain
// directory (no tmpfs, no root) and whose uids come from a range of its own.
func fakeRunner(t *testing.T, f *fakeExec, state string, opts ...Option) *Runner {
	t.Helper()
	opts = append([]Option{WithUIDRange(UIDRange{First: MinJobUID, Count: 64}, filepath.Join(state, "uids"))}, opts...)
	r, err := NewRunner(f, state, opts...)
	if err != nil {
		t.Fatal(err)
	}
	r.poll = 10 * time.Millisecond
	r.mountOut = func(dir string, _ int64, _ uint32) error { return os.MkdirAll(dir, 0o700) }
	return r
}

// nothingLeft checks that a job left no workspace, lease or record behind.
func nothingLeft(t *testing.T, state string) {
	t.Helper()
	for _, d := range []string{"jobs", "records", "uids"} {
		entries, _ := os.ReadDir(filepath.Join(state, d))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				t.Errorf("%s/%s left behind", d, e.Name())
			}
		}
	}
}

func readResult(t *testing.T, q string) *Result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(q, "result.json"))
	if err != nil {
		t.Fatalf("result.json: %v", err)
	}
	var res Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

func TestRunnerBranches(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		setup   func(f *fakeExec)
		timeout time.Duration
		reason  Reason
		code    int
		runErr  bool // Run returns an error and leaves no result
	}{
		{"exited", func(f *fakeExec) { f.exit = Exit{Code: 3} }, 0, ReasonExited, 3, false},
		{"oom", func(f *fakeExec) { f.exit = Exit{Code: 137, OOMKilled: true} }, 0, ReasonOOM, 137, false},
		{"runtime failure", func(f *fakeExec) { f.exit = Exit{Code: 2, RuntimeError: "gVisor sandbox crashed: panic"} }, 0, ReasonRuntime, 2, false},
		{"timeout", func(f *fakeExec) { f.block = true }, 50 * time.Millisecond, ReasonTimeout, 137, false},
		{"start fails", func(f *fakeExec) { f.startErr = boom }, 0, ReasonError, -1, false},
		{"prepare fails", func(f *fakeExec) { f.prepareErr = boom }, 0, "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			tc.setup(f)
			state, q := t.TempDir(), filepath.Join(t.TempDir(), "q")
			res, err := fakeRunner(t, f, state).Run(context.Background(), Job{ID: "job-1", Image: "i", Limits: Limits{Timeout: tc.timeout}}, q)
			if tc.runErr {
				if !errors.Is(err, boom) || res != nil {
					t.Fatalf("Run = %v, %v; want the prepare error and no result", res, err)
				}
				if _, err := os.Stat(q); err == nil {
					t.Error("a quarantine directory was made for a job that never ran")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if res.Reason != tc.reason || res.ExitCode != tc.code || res.Recovered {
					t.Errorf("result %s/%d recovered=%v, want %s/%d", res.Reason, res.ExitCode, res.Recovered, tc.reason, tc.code)
				}
				if onDisk := readResult(t, q); onDisk.Reason != res.Reason {
					t.Errorf("result.json says %s, Run says %s", onDisk.Reason, res.Reason)
				}
			}
			if !f.called("cleanup job-1") {
				t.Error("the container was not cleaned up")
			}
			nothingLeft(t, state)
		})
	}
}

func TestRunnerCancelStops(t *testing.T) {
	f := newFake()
	f.block = true
	ctx, cancel := context.WithCancel(context.Background())
	f.waiting = make(chan string, 1)
	go func() { <-f.waiting; cancel() }()
	state, q := t.TempDir(), filepath.Join(t.TempDir(), "q")
	res, err := fakeRunner(t, f, state).Run(ctx, Job{ID: "job-1", Image: "i"}, q)
	if err != nil || res.Reason != ReasonStopped {
		t.Fatalf("Run = %+v, %v; want reason stopped", res, err)
	}
	nothingLeft(t, state)
}

// TestRunnerWaitErrorKeepsTheJob: when the end of a job cannot be
// established, Run says so and the job stays recorded running, for Recover.
func TestRunnerWaitErrorKeepsTheJob(t *testing.T) {
	f := newFake()
	f.waitErr = errors.New("shim gone")
	state := t.TempDir()
	r := fakeRunner(t, f, state)
	if _, err := r.Run(context.Background(), Job{ID: "job-1", Image: "i"}, filepath.Join(t.TempDir(), "q")); err == nil {
		t.Fatal("Run reported no error")
	}
	rec, err := r.store.Get(context.Background(), "job-1")
	if err != nil || rec.State != JobRunning {
		t.Fatalf("record %+v, %v; want running", rec, err)
	}
	// The same ID cannot be run again while the job is recorded.
	if _, err := r.Run(context.Background(), Job{ID: "job-1", Image: "i"}, filepath.Join(t.TempDir(), "q")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("second Run: %v, want in use", err)
	}
}

// TestRecoverEveryState: a job left in each state by a crashed process is
// taken to an end: failed with a reason, or done; never run twice, never
// left behind.
func TestRecoverEveryState(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	f := newFake()
	r := fakeRunner(t, f, state)
	qs := map[string]string{}
	// leave writes a record in a state, as a crashed process would have.
	leave := func(id string, st JobState, exec *fakeJob) {
		t.Helper()
		job := Job{ID: id, Image: "i", Runtime: RuntimeRunc, Limits: DefaultLimits}
		qs[id] = filepath.Join(t.TempDir(), "q")
		rec := &JobRecord{ID: id, State: st, Job: job, Quarantine: qs[id], StartedAt: time.Now()}
		if st != JobQueued {
			inst, err := r.createWorkspace(ctx, &job)
			if err != nil {
				t.Fatal(err)
			}
			inst.Deadline = time.Now().Add(time.Hour)
			rec.Instance = inst
		}
		if st == JobFinishing {
			rec.Exit, rec.Reason = &Exit{Code: 0, At: time.Now()}, ReasonExited
		}
		if exec != nil {
			exec.stopped = make(chan struct{})
			f.jobs[id] = exec
		}
		if err := r.store.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	leave("preparing", JobPreparing, &fakeJob{state: StateCreated})
	leave("stopped", JobRunning, &fakeJob{state: StateStopped, exit: &Exit{Code: 3, At: time.Now()}})
	leave("live", JobRunning, &fakeJob{state: StateRunning})
	leave("gone", JobRunning, nil)
	leave("created", JobRunning, &fakeJob{state: StateCreated})
	leave("finishing", JobFinishing, nil)
	leave("done", JobRunning, nil)
	rec, _ := r.store.Get(ctx, "done")
	rec.State = JobDone // recorded done, not yet cleaned up
	r.store.Put(ctx, rec)
	f.exit = Exit{Code: 0}

	results, err := fakeRunner(t, f, state).Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, res := range results {
		got[res.JobID] = string(res.Reason) + "/" + res.Error
		if !res.Recovered {
			t.Errorf("%s: not marked recovered", res.JobID)
		}
	}
	want := map[string]string{
		"preparing": "error/sluice stopped while the job was being prepared",
		"stopped":   "exited/",
		"live":      "exited/",
		"gone":      "error/the job's container disappeared while sluice was not running",
		"created":   "error/the job was created but never started",
		"finishing": "exited/",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
		if res := readResult(t, qs[id]); string(res.Reason)+"/"+res.Error != w {
			t.Errorf("%s: result.json says %s/%s", id, res.Reason, res.Error)
		}
	}
	if _, ok := got["done"]; ok || len(results) != len(want) {
		t.Errorf("results %v: want one per unfinished job", got)
	}
	for _, id := range []string{"preparing", "stopped", "created", "gone"} {
		if f.called("start " + id) {
			t.Errorf("%s was started again", id)
		}
	}
	nothingLeft(t, state)
}

// TestRecoverConcurrently: jobs are recovered side by side — the second is
// waited for while the first still runs (one goroutine each).
func TestRecoverConcurrently(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	f := newFake()
	r := fakeRunner(t, f, state)
	for _, id := range []string{"job-a", "job-b"} {
		job := Job{ID: id, Image: "i", Runtime: RuntimeRunc, Limits: DefaultLimits}
		inst, err := r.createWorkspace(ctx, &job)
		if err != nil {
			t.Fatal(err)
		}
		inst.Deadline = time.Now().Add(time.Hour)
		f.jobs[id] = &fakeJob{state: StateRunning, stopped: make(chan struct{})}
		r.store.Put(ctx, &JobRecord{ID: id, State: JobRunning, Job: job, Instance: inst, Quarantine: filepath.Join(t.TempDir(), "q")})
	}
	f.waiting, f.release = make(chan string, 2), make(chan struct{})
	done := make(chan []*Result)
	go func() {
		res, _ := fakeRunner(t, f, state).Recover(ctx)
		done <- res
	}()
	for range 2 {
		select {
		case <-f.waiting: // both jobs wait at once, or this never ends
		case <-time.After(30 * time.Second):
			t.Fatal("Recover waits for one job before it takes on the next")
		}
	}
	close(f.release)
	if res := <-done; len(res) != 2 {
		t.Fatalf("recovered %d jobs, want 2", len(res))
	}
}

// TestRecoverLeavesLockedJobs: a job another process drives (it holds the
// job's lock) is not touched.
func TestRecoverLeavesLockedJobs(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	f := newFake()
	r := fakeRunner(t, f, state)
	job := Job{ID: "job-1", Image: "i", Runtime: RuntimeRunc, Limits: DefaultLimits}
	r.store.Put(ctx, &JobRecord{ID: "job-1", State: JobRunning, Job: job, Quarantine: filepath.Join(t.TempDir(), "q")})
	f.jobs["job-1"] = &fakeJob{state: StateRunning, stopped: make(chan struct{})}
	lock, err := lockJob(state, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.release()
	res, err := r.Recover(ctx)
	if err != nil || len(res) != 0 {
		t.Fatalf("Recover = %v, %v; want nothing done", res, err)
	}
	if f.called("stop job-1") || f.called("cleanup job-1") || f.called("wait job-1") {
		t.Errorf("a locked job was touched: %v", f.calls)
	}
	if _, err := r.store.Get(ctx, "job-1"); err != nil {
		t.Errorf("its record went: %v", err)
	}
}

// TestSweepLeavesOtherRunners: runners that share an executor (a
// containerd namespace) remove only their own containers that no record
// names — not the other's running jobs.
func TestSweepLeavesOtherRunners(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.block = true
	mine, theirs := t.TempDir(), t.TempDir()
	other := fakeRunner(t, f, theirs)
	done := make(chan error, 1)
	go func() {
		_, err := other.Run(ctx, Job{ID: "job-theirs", Image: "i"}, filepath.Join(t.TempDir(), "q"))
		done <- err
	}()
	for !f.called("start job-theirs") {
		time.Sleep(5 * time.Millisecond)
	}
	f.jobs["job-orphan"] = &fakeJob{owner: mine, state: StateRunning, stopped: make(chan struct{})}
	f.jobs["job-unowned"] = &fakeJob{state: StateRunning, stopped: make(chan struct{})}
	if err := fakeRunner(t, f, mine).Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"job-theirs": false, "job-orphan": true, "job-unowned": true} {
		if got := f.called("cleanup " + id); got != want {
			t.Errorf("%s removed: %v, want %v", id, got, want)
		}
	}
	f.Stop(ctx, "job-theirs")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunnerHistory(t *testing.T) {
	f := newFake()
	state := t.TempDir()
	r := fakeRunner(t, f, state, WithHistory())
	if _, err := r.Run(context.Background(), Job{ID: "job-1", Image: "i"}, filepath.Join(t.TempDir(), "q")); err != nil {
		t.Fatal(err)
	}
	rec, err := r.store.Get(context.Background(), "job-1")
	if err != nil || rec.State != JobDone || rec.Result == nil || rec.Result.Reason != ReasonExited {
		t.Fatalf("kept record %+v, %v; want done with its result", rec, err)
	}
}

func TestTransitions(t *testing.T) {
	order := []JobState{JobQueued, JobPreparing, JobRunning, JobFinishing, JobDone}
	rec := &JobRecord{ID: "j", State: JobQueued}
	for _, s := range order[1:] {
		if err := transition(rec, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range order {
		if err := transition(rec, s); err == nil {
			t.Errorf("a done job moved to %s", s)
		}
	}
	back := &JobRecord{ID: "j", State: JobRunning}
	if err := transition(back, JobPreparing); err == nil {
		t.Error("a running job moved back to preparing")
	}
	for _, s := range order[:4] {
		if err := transition(&JobRecord{ID: "j", State: s}, JobFailed); err != nil {
			t.Errorf("%s cannot fail: %v", s, err)
		}
	}
}
