package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/sandbox"
	"github.com/sluicehq/sluice/storage"
)

// Executor is what the server needs of a sandbox: it runs job containers
// and names the digest of an imported image (what a job is pinned by).
type Executor interface {
	sandbox.Executor
	ImageDigest(ctx context.Context, name string) (string, error)
}

// scheduler takes queued jobs to the sandbox, at most cfg.MaxJobs at once
// (oldest first), and takes on after a restart every job an earlier process
// left running. Each job is driven in a goroutine of its own with a context
// of its own: cancelling it (a user's cancel, a suspended or expired
// scenario) stops the job; a stopping server cancels none — the next start
// recovers them.
type scheduler struct {
	s      *Server
	runner *sandbox.Runner
	kick   chan struct{}

	mu      sync.Mutex
	running map[string]*runningJob // jobs this process drives
}

type runningJob struct {
	scenario string
	cancel   context.CancelCauseFunc
}

func newScheduler(s *Server, exec Executor) (*scheduler, error) {
	sc := &scheduler{s: s, kick: make(chan struct{}, 1), running: map[string]*runningJob{}}
	runner, err := sandbox.NewRunner(exec, s.cfg.StateDir,
		sandbox.WithStore(&jobStore{s: s}), sandbox.WithHistory(), sandbox.WithLogger(s.log),
		sandbox.WithInputOpener(s.openView), sandbox.WithLimits(sandbox.DefaultLimits, s.cfg.MaxLimits))
	if err != nil {
		return nil, err
	}
	sc.runner = runner
	return sc, nil
}

// start takes on the jobs an earlier process left, removes what no job
// names, and dispatches queued jobs until ctx ends.
func (sc *scheduler) start(ctx context.Context) error {
	left, err := sc.s.meta.ListJobs(ctx, metadata.JobFilter{Assigned: true, States: unended})
	if err != nil {
		return err
	}
	for _, j := range left {
		sc.s.log.Info("recovering a job", "job", j.ID, "state", j.State)
		sc.launch(ctx, j, func(jctx context.Context) error {
			_, err := sc.runner.Resume(jctx, j.ID)
			return err
		})
	}
	if err := sc.runner.Sweep(ctx); err != nil {
		sc.s.log.Error("sweeping the sandbox", "err", err)
	}
	// Prod jobs that finished while no gate checked their products (a
	// crash between the two) are checked now.
	if unchecked, err := sc.s.meta.ProdJobsWithoutEgress(ctx); err != nil {
		sc.s.log.Error("listing unchecked prod jobs", "err", err)
	} else {
		for _, j := range unchecked {
			go func() {
				if err := sc.s.requestEgress(context.WithoutCancel(ctx), j); err != nil {
					sc.s.log.Error("egress request", "job", j.ID, "err", err)
				}
			}()
		}
	}
	go sc.loop(ctx)
	return nil
}

// unended are the states of a job that has not ended.
var unended = []string{string(sandbox.JobQueued), string(sandbox.JobPreparing), string(sandbox.JobRunning), string(sandbox.JobFinishing)}

// wake asks the dispatcher to look at the queue now.
func (sc *scheduler) wake() {
	select {
	case sc.kick <- struct{}{}:
	default:
	}
}

func (sc *scheduler) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		sc.dispatch(ctx)
		sc.closeEnded(ctx)
		select {
		case <-ctx.Done():
			return
		case <-sc.kick:
		case <-tick.C:
		}
	}
}

// dispatch hands queued jobs to the sandbox while there is room; a job
// whose scenario is no longer active fails without running.
func (sc *scheduler) dispatch(ctx context.Context) {
	queued, err := sc.s.meta.ListJobs(ctx, metadata.JobFilter{States: []string{string(sandbox.JobQueued)}, Unassigned: true})
	if err != nil {
		if ctx.Err() == nil {
			sc.s.log.Error("listing queued jobs", "err", err)
		}
		return
	}
	for _, j := range queued {
		if sc.busy(j.ID) {
			continue
		}
		if sc.active() >= sc.s.cfg.MaxJobs {
			return
		}
		st, err := sc.s.scenarioState(ctx, j.ScenarioID)
		if err != nil {
			sc.s.log.Error("reading a queued job's scenario: it waits", "job", j.ID, "err", err)
			continue
		}
		if st != metadata.ScenarioActive {
			sc.endUnassigned(ctx, j, string(sandbox.ReasonStopped), fmt.Sprintf("scenario %s is %s: the job did not run", j.ScenarioID, st))
			continue
		}
		sc.launch(ctx, j, func(jctx context.Context) error { return sc.run(jctx, j) })
	}
}

// closeEnded stops the running jobs whose scenario is no longer active
// (expired since it started: suspension and termination stop theirs at
// once).
func (sc *scheduler) closeEnded(ctx context.Context) {
	sc.mu.Lock()
	jobs := make(map[string]*runningJob, len(sc.running))
	for id, r := range sc.running {
		jobs[id] = r
	}
	sc.mu.Unlock()
	for id, r := range jobs {
		if st, err := sc.s.scenarioState(ctx, r.scenario); err == nil && st != metadata.ScenarioActive {
			sc.s.log.Info("stopping a job: its scenario is no longer active", "job", id, "scenario", r.scenario, "state", st)
			r.cancel(fmt.Errorf("scenario %s is %s", r.scenario, st))
		}
	}
}

func (sc *scheduler) busy(id string) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	_, ok := sc.running[id]
	return ok
}

func (sc *scheduler) active() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.running)
}

// launch drives a job in its own goroutine with its own context; the
// server's cancellation does not reach it (a stopping server leaves jobs
// to recovery).
func (sc *scheduler) launch(ctx context.Context, j metadata.Job, drive func(context.Context) error) {
	jctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	sc.mu.Lock()
	sc.running[j.ID] = &runningJob{scenario: j.ScenarioID, cancel: cancel}
	sc.mu.Unlock()
	go func() {
		defer func() {
			cancel(nil)
			sc.mu.Lock()
			delete(sc.running, j.ID)
			sc.mu.Unlock()
			sc.wake()
		}()
		if err := drive(jctx); err == nil {
			// A finished prod job's products go to the gate, whatever
			// becomes of the job's context.
			if cur, gerr := sc.s.meta.GetJob(context.WithoutCancel(ctx), j.ID); gerr == nil {
				if eerr := sc.s.requestEgress(context.WithoutCancel(ctx), cur); eerr != nil {
					sc.s.log.Error("egress request", "job", j.ID, "err", eerr)
				}
			}
		} else {
			sc.s.log.Error("job", "job", j.ID, "err", err)
			// A job the sandbox never recorded ends here, with the reason.
			reason, msg := sandbox.ReasonError, sc.s.scrub(err.Error())
			if cause := context.Cause(jctx); cause != nil {
				reason, msg = sandbox.ReasonStopped, "stopped before it started: "+cause.Error()
			}
			if cur, gerr := sc.s.meta.GetJob(context.WithoutCancel(ctx), j.ID); gerr == nil && cur.Record == nil {
				sc.endUnassigned(context.WithoutCancel(ctx), cur, string(reason), msg)
			}
		}
	}()
}

// cancel stops a job this process drives; false when it drives none of
// that ID.
func (sc *scheduler) cancel(id string, why error) bool {
	sc.mu.Lock()
	r, ok := sc.running[id]
	sc.mu.Unlock()
	if ok {
		r.cancel(why)
	}
	return ok
}

// cancelScenario stops every running job of a scenario.
func (sc *scheduler) cancelScenario(scenario string, why error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, r := range sc.running {
		if r.scenario == scenario {
			r.cancel(why)
		}
	}
}

func (sc *scheduler) endUnassigned(ctx context.Context, j metadata.Job, reason, msg string) {
	if err := sc.s.appendAudit(ctx, audit.Record{Actor: "system", Tenant: j.TenantID, Action: "job-failed", Resource: j.ID, Result: reason}); err != nil {
		sc.s.log.Error("audit: leaving the job queued", "job", j.ID, "err", err)
		return
	}
	if err := sc.s.meta.EndUnassignedJob(ctx, j.ID, reason, msg); err != nil && !errors.Is(err, metadata.ErrConflict) {
		sc.s.log.Error("ending a job", "job", j.ID, "err", err)
	}
}

// run makes the scenario's views of the job's kind (cached: made once per
// dataset version and kind), then runs the job over them: its inputs are
// the sealed views, decrypted as the workspace is laid out.
func (sc *scheduler) run(ctx context.Context, j metadata.Job) error {
	scn, err := sc.s.meta.GetScenario(ctx, j.ScenarioID)
	if err != nil {
		return err
	}
	var limits sandbox.Limits
	if err := json.Unmarshal(j.Limits, &limits); err != nil {
		return fmt.Errorf("job %s: limits: %w", j.ID, err)
	}
	job := sandbox.Job{ID: j.ID, Image: j.Image, Command: j.Command, Runtime: sandbox.Runtime(j.Runtime), Limits: limits,
		Code: sc.s.codePath(j.CodeDigest)}
	for _, d := range scn.Datasets {
		object, err := sc.s.ensureView(ctx, scn, d, j.Kind)
		if err != nil {
			return fmt.Errorf("the %s view of %s: %w", j.Kind, d.Name, err)
		}
		job.Inputs = append(job.Inputs, sandbox.Input{Name: d.Name, Path: object})
	}
	_, err = sc.runner.Run(ctx, job, sc.s.quarantine(j.ID))
	return err
}

// quarantine is where a job's outputs, logs and result are collected.
func (s *Server) quarantine(id string) string { return filepath.Join(s.cfg.DataDir, "quarantine", id) }

// codePath is where an uploaded code bundle is kept.
func (s *Server) codePath(digest string) string {
	return filepath.Join(s.cfg.DataDir, "code", strings.TrimPrefix(digest, "sha256:")+".tar.gz")
}

// scrub takes the server's own paths out of a message shown to users.
func (s *Server) scrub(msg string) string {
	for _, p := range []struct{ path, as string }{{s.cfg.StateDir, "<state>"}, {s.cfg.DataDir, "<data>"}} {
		if abs, err := filepath.Abs(p.path); err == nil {
			msg = strings.ReplaceAll(msg, abs, p.as)
		}
		msg = strings.ReplaceAll(msg, p.path, p.as)
	}
	return msg
}

// scenarioState is a scenario's state as it stands now.
func (s *Server) scenarioState(ctx context.Context, id string) (metadata.ScenarioState, error) {
	sc, err := s.meta.GetScenario(ctx, id)
	if err != nil {
		return "", err
	}
	return sc.Effective(time.Now()), nil
}

// ensureView returns the sealed view of one of a scenario's datasets,
// making it when it is not cached.
func (s *Server) ensureView(ctx context.Context, sc metadata.Scenario, d metadata.ScenarioDataset, kind string) (string, error) {
	object := viewObject(sc.ID, d.Name, d.Version, kind)
	if o, err := s.store.Get(ctx, object); err == nil {
		o.Close()
		return object, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	v, err := s.makeView(ctx, sc, d.Name, kind)
	return v.Object, err
}

// openView opens a sealed view (named by its object) with its scenario's
// view key, decrypted as it is read: a job's workspace is laid out from it
// with no other plaintext copy. A terminated scenario's key is gone: its
// views open for no one.
func (s *Server) openView(name string) (dataset.File, int64, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "views" {
		return nil, 0, fmt.Errorf("%s is not a view: %w", name, metadata.ErrInvalidArgument)
	}
	ctx := context.Background()
	sc, err := s.meta.GetScenario(ctx, parts[1])
	if err != nil {
		return nil, 0, err
	}
	if len(sc.ViewKey) == 0 {
		return nil, 0, fmt.Errorf("scenario %s has no view key (terminated): %w", sc.ID, storage.ErrKey)
	}
	key, err := s.master.Unwrap(sc.ViewKey)
	if err != nil {
		return nil, 0, err
	}
	return s.sealedRead(ctx, key).Open(name)
}

// jobStore keeps the sandbox's job records in the metadata store, with
// the job they belong to: the job's state is the record's. Every
// transition is an audit event, written first: a transition that cannot
// be recorded does not happen (the job stays where it was, for recovery).
type jobStore struct{ s *Server }

var _ sandbox.Store = (*jobStore)(nil)

func (js *jobStore) Put(ctx context.Context, rec *sandbox.JobRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	p := metadata.JobProgress{State: string(rec.State), Reason: string(rec.Reason), Error: rec.Error, Record: data}
	if r := rec.Result; r != nil {
		code := r.ExitCode
		p.Reason, p.Error, p.ExitCode = string(r.Reason), r.Error, &code
	}
	p.Error = js.s.scrub(p.Error)
	j, err := js.s.meta.GetJob(ctx, rec.ID)
	if err != nil {
		return err
	}
	result := p.Reason
	if result == "" {
		result = "ok"
	}
	if err := js.s.appendAudit(ctx, audit.Record{Actor: "system", Tenant: j.TenantID, Action: "job-" + string(rec.State), Resource: rec.ID, Result: result}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := js.s.meta.RecordJob(ctx, rec.ID, p); err != nil {
		return err
	}
	if rec.State.Final() {
		code := -1
		if p.ExitCode != nil {
			code = *p.ExitCode
		}
		js.s.jobEnded(ctx, j.TenantID, rec.State, sandbox.Reason(p.Reason), code)
	}
	return nil
}

func (js *jobStore) Get(ctx context.Context, id string) (*sandbox.JobRecord, error) {
	j, err := js.s.meta.GetJob(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) || err == nil && j.Record == nil {
		return nil, fmt.Errorf("job %s: %w", id, sandbox.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord(j)
}

// List reads the records of the jobs that have not ended. The ended ones
// are history: the sandbox has nothing of them to take on, and whatever a
// failed cleanup left of one is removed by Sweep as unnamed. (Reading every
// record of the platform's history at each start would grow with it.)
func (js *jobStore) List(ctx context.Context) ([]*sandbox.JobRecord, error) {
	jobs, err := js.s.meta.ListJobs(ctx, metadata.JobFilter{Assigned: true, Records: true, States: unended})
	if err != nil {
		return nil, err
	}
	var out []*sandbox.JobRecord
	for _, j := range jobs {
		rec, err := decodeRecord(j)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Delete keeps the record: the platform keeps every job's history.
func (js *jobStore) Delete(context.Context, string) error { return nil }

func decodeRecord(j metadata.Job) (*sandbox.JobRecord, error) {
	var rec sandbox.JobRecord
	if err := json.Unmarshal(j.Record, &rec); err != nil {
		return nil, fmt.Errorf("job %s: record: %w", j.ID, err)
	}
	return &rec, nil
}

// removeScratch empties the server's scratch directory: a view being made
// when an earlier process died leaves its scratch file there.
func (s *Server) removeScratch() error {
	dir := filepath.Join(s.cfg.DataDir, "tmp")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}
