package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/internal/atomicfile"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/sandbox"
)

// MaxCodeBundle is the largest code bundle (.tar.gz) the API takes; what
// it unpacks to is bounded by the sandbox's code limits.
const MaxCodeBundle = 64 << 20

type uploadCodeInput struct {
	RawBody []byte `contentType:"application/gzip" doc:"The code as a .tar.gz: regular files and directories only"`
}

type codeBody struct {
	Body metadata.CodeBundle
}

// JobLimits are the resources a job asks for; zero takes the platform's
// default, and nothing may exceed its maximum.
type JobLimits struct {
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
	Pids        int64   `json:"pids,omitempty"`
	Timeout     string  `json:"timeout,omitempty" doc:"Wall-clock limit, e.g. 10m"`
	OutputBytes int64   `json:"output_bytes,omitempty"`
	LogBytes    int64   `json:"log_bytes,omitempty"`
	TmpBytes    int64   `json:"tmp_bytes,omitempty"`
	ShmBytes    int64   `json:"shm_bytes,omitempty"`
}

type submitInput struct {
	Body struct {
		Scenario string    `json:"scenario" doc:"The active scenario the job runs under"`
		Kind     string    `json:"kind" enum:"dev,prod" doc:"dev: the dev extract, outputs readable; prod: the prod views, outputs quarantined"`
		Image    string    `json:"image" doc:"An allow-listed image, by name" example:"python"`
		Code     string    `json:"code" doc:"The sha256 digest of a code bundle uploaded with POST /api/v1/code" example:"sha256:…"`
		Command  []string  `json:"command" doc:"argv, e.g. [\"python3\", \"/code/main.py\"]"`
		Runtime  string    `json:"runtime,omitempty" enum:"runc,gvisor" doc:"runc (default) or gvisor"`
		Limits   JobLimits `json:"limits,omitzero"`
	}
}

// JobView is a job as the API shows it: what ran, where it is, and, once
// it has ended, its result (outputs by name, size and digest: never their
// content).
type JobView struct {
	metadata.Job
	Limits   sandbox.Limits     `json:"limits"`
	Outputs  []sandbox.Output   `json:"outputs,omitempty"`
	Rejected []sandbox.Rejected `json:"rejected,omitempty"`
	Usage    *sandbox.Usage     `json:"usage,omitempty"`
	Duration int64              `json:"duration_ms,omitempty"`
	// Recovered: the job was finished by a later server process than the
	// one that started it (a restart or a crash in between).
	Recovered bool `json:"recovered,omitempty"`
	// Quarantined: a prod job's outputs and logs are readable by nobody
	// until released through egress.
	Quarantined bool `json:"quarantined"`
}

type jobBody struct {
	Body JobView
}

type jobsBody struct {
	Body struct {
		Jobs []JobView `json:"jobs"`
	}
}

type listJobsInput struct {
	Scenario string `query:"scenario" doc:"Only this scenario's jobs"`
	State    string `query:"state" enum:"queued,preparing,running,finishing,done,failed," doc:"Only jobs in this state"`
}

type logsInput struct {
	ID     string `path:"id"`
	Stream string `path:"stream" enum:"stdout,stderr"`
	Follow bool   `query:"follow" doc:"Keep the response open and send what the job prints until it ends"`
}

type outputInput struct {
	ID   string `path:"id"`
	Path string `query:"path" required:"true" doc:"The output's path under /data/out, as the job's result names it"`
}

func (s *Server) registerJobs(api huma.API) {
	up := operation("upload-code", http.MethodPost, "/api/v1/code", "Upload a code bundle (.tar.gz, scientist): it is named by its sha256", 400, 403, 413)
	up.MaxBodyBytes = MaxCodeBundle
	huma.Register(api, up, func(ctx context.Context, in *uploadCodeInput) (*codeBody, error) {
		if err := require(ctx, metadata.RoleScientist); err != nil {
			return nil, apiError(err)
		}
		b, err := s.uploadCode(ctx, in.RawBody)
		if err != nil {
			return nil, apiError(err)
		}
		return &codeBody{Body: b}, nil
	})
	huma.Register(api, operation("submit-job", http.MethodPost, "/api/v1/jobs",
		"Submit a job under an active scenario (scientist); admission is the policy's decision", 400, 403, 404, 503),
		func(ctx context.Context, in *submitInput) (*jobBody, error) {
			if err := require(ctx, metadata.RoleScientist); err != nil {
				return nil, apiError(err)
			}
			j, err := s.submit(ctx, in)
			if err != nil {
				return nil, apiError(err)
			}
			return &jobBody{Body: s.jobView(j)}, nil
		})
	huma.Register(api, operation("list-jobs", http.MethodGet, "/api/v1/jobs", "The jobs you may see, the oldest first (without their results: GET /api/v1/jobs/{id} has them)"),
		func(ctx context.Context, in *listJobsInput) (*jobsBody, error) {
			f := metadata.JobFilter{ScenarioID: in.Scenario, TenantID: visibleTenant(ctx)}
			if in.State != "" {
				f.States = []string{in.State}
			}
			jobs, err := s.meta.ListJobs(ctx, f)
			if err != nil {
				return nil, apiError(err)
			}
			out := &jobsBody{}
			out.Body.Jobs = []JobView{}
			for _, j := range jobs {
				out.Body.Jobs = append(out.Body.Jobs, s.jobView(j))
			}
			return out, nil
		})
	huma.Register(api, operation("get-job", http.MethodGet, "/api/v1/jobs/{id}", "A job", 404),
		func(ctx context.Context, in *idPath) (*jobBody, error) {
			j, err := s.visibleJob(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &jobBody{Body: s.jobView(j)}, nil
		})
	huma.Register(api, operation("cancel-job", http.MethodPost, "/api/v1/jobs/{id}/cancel", "Stop a job (its submitter, or an admin)", 403, 404, 409),
		func(ctx context.Context, in *idPath) (*jobBody, error) {
			j, err := s.visibleJob(ctx, in.ID)
			if err == nil {
				err = s.cancelJob(ctx, j)
			}
			if err != nil {
				return nil, apiError(err)
			}
			if j, err = s.meta.GetJob(ctx, in.ID); err != nil {
				return nil, apiError(err)
			}
			return &jobBody{Body: s.jobView(j)}, nil
		})
	huma.Register(api, operation("job-logs", http.MethodGet, "/api/v1/jobs/{id}/logs/{stream}",
		"A dev job's stdout or stderr (its submitter); prod logs are quarantined", 403, 404),
		func(ctx context.Context, in *logsInput) (*huma.StreamResponse, error) {
			j, err := s.readableJob(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &huma.StreamResponse{Body: func(hc huma.Context) {
				hc.SetHeader("Content-Type", "text/plain; charset=utf-8")
				hc.SetHeader("X-Content-Type-Options", "nosniff")
				s.streamLog(hc.Context(), hc.BodyWriter(), j.ID, in.Stream, in.Follow)
			}}, nil
		})
	huma.Register(api, operation("job-output", http.MethodGet, "/api/v1/jobs/{id}/output",
		"One output of a dev job (its submitter); prod outputs are quarantined", 403, 404),
		func(ctx context.Context, in *outputInput) (*huma.StreamResponse, error) {
			j, err := s.readableJob(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			v := s.jobView(j)
			i := slices.IndexFunc(v.Outputs, func(o sandbox.Output) bool { return o.Path == in.Path })
			if i < 0 {
				return nil, apiError(fmt.Errorf("job %s has no output %q: %w", j.ID, in.Path, metadata.ErrNotFound))
			}
			return attachment(filepath.Join(s.quarantine(j.ID), "out", filepath.FromSlash(v.Outputs[i].Path)))
		})
}

// attachment answers with a file's bytes, to be saved, never rendered.
func attachment(path string) (*huma.StreamResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, apiError(err)
	}
	return &huma.StreamResponse{Body: func(hc huma.Context) {
		defer f.Close()
		hc.SetHeader("Content-Type", "application/octet-stream")
		hc.SetHeader("X-Content-Type-Options", "nosniff")
		hc.SetHeader("Content-Disposition", "attachment")
		io.Copy(hc.BodyWriter(), f)
	}}, nil
}

// flusher flushes what was written to w to the client, when w is an HTTP
// response: a stream shows each line as it is written.
func flusher(w io.Writer) func() {
	rw, ok := w.(http.ResponseWriter)
	if !ok {
		return func() {}
	}
	return func() { http.NewResponseController(rw).Flush() }
}

// uploadCode checks a code bundle as a workspace would take it and keeps
// it, named by its sha256, for the caller's tenant.
func (s *Server) uploadCode(ctx context.Context, data []byte) (metadata.CodeBundle, error) {
	if len(data) == 0 {
		return metadata.CodeBundle{}, fmt.Errorf("the body is empty: send the code as a .tar.gz: %w", metadata.ErrInvalidArgument)
	}
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	path := s.codePath(digest)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return metadata.CodeBundle{}, err
	}
	if _, err := os.Stat(path); err != nil {
		scratch := filepath.Join(s.cfg.DataDir, "tmp", randomHex(8)+".tar.gz")
		if err := os.WriteFile(scratch, data, 0o600); err != nil {
			return metadata.CodeBundle{}, err
		}
		defer os.Remove(scratch)
		if err := sandbox.CheckCode(scratch, filepath.Dir(scratch), sandbox.DefaultCodeLimits); err != nil {
			return metadata.CodeBundle{}, fmt.Errorf("%s: %w", s.scrubCode(err.Error(), scratch), metadata.ErrInvalidArgument)
		}
		if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
			return metadata.CodeBundle{}, err
		}
	}
	u := principal(ctx)
	return s.meta.AddCodeBundle(ctx, metadata.CodeBundle{Digest: digest, TenantID: u.TenantID, Size: int64(len(data)), CreatedBy: u.ID})
}

// scrubCode names an uploaded bundle "the code bundle" where a message
// names its scratch file.
func (s *Server) scrubCode(msg, scratch string) string {
	return s.scrub(strings.ReplaceAll(msg, "code "+scratch, "the code bundle"))
}

// admissionInput is the document the admission policy decides on
// (docs/jobs.md).
type admissionInput struct {
	Job struct {
		Kind  string `json:"kind"`
		Image struct {
			Name   string `json:"name"`
			Digest string `json:"digest"`
		} `json:"image"`
		CodeDigest string         `json:"code_digest"`
		Runtime    string         `json:"runtime"`
		Limits     sandbox.Limits `json:"limits"`
	} `json:"job"`
	Scenario struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		TenantID string `json:"tenant_id"`
	} `json:"scenario"`
	Submitter struct {
		ID       string `json:"id"`
		Role     string `json:"role"`
		TenantID string `json:"tenant_id"`
	} `json:"submitter"`
	Platform struct {
		AllowedImages []string       `json:"allowed_images"`
		Runtimes      []string       `json:"runtimes"`
		MaxLimits     sandbox.Limits `json:"max_limits"`
	} `json:"platform"`
	History struct {
		DevSucceeded []string `json:"dev_succeeded"`
	} `json:"history"`
}

// submit checks a job, asks the admission policy, and queues it.
func (s *Server) submit(ctx context.Context, in *submitInput) (metadata.Job, error) {
	b := in.Body
	if s.sched == nil {
		return metadata.Job{}, fmt.Errorf("this server runs no jobs (no container runtime was configured): %w", sandbox.ErrUnavailable)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, metadata.ErrInvalidArgument)...)
	}
	if len(b.Command) == 0 {
		return metadata.Job{}, bad("command: give the argv to run, e.g. [\"python3\", \"/code/main.py\"]")
	}
	sc, err := s.visibleScenario(ctx, b.Scenario)
	if err != nil {
		return metadata.Job{}, err
	}
	u := principal(ctx)
	if _, err := s.meta.GetCodeBundle(ctx, u.TenantID, b.Code); err != nil {
		return metadata.Job{}, fmt.Errorf("code: %w (upload it with POST /api/v1/code)", err)
	}
	runtime := sandbox.Runtime(b.Runtime)
	if runtime == "" {
		runtime = sandbox.RuntimeRunc
	}
	var timeout time.Duration
	if b.Limits.Timeout != "" {
		if timeout, err = time.ParseDuration(b.Limits.Timeout); err != nil || timeout <= 0 {
			return metadata.Job{}, bad("limits.timeout %q: use a positive duration such as 10m", b.Limits.Timeout)
		}
	}
	ask := sandbox.Limits{Memory: b.Limits.MemoryBytes, CPUs: b.Limits.CPUs, Pids: b.Limits.Pids, Timeout: timeout,
		OutputBytes: b.Limits.OutputBytes, LogBytes: b.Limits.LogBytes, TmpBytes: b.Limits.TmpBytes, ShmBytes: b.Limits.ShmBytes}
	def := sandbox.DefaultLimits
	if runtime == sandbox.RuntimeGVisor {
		def.Pids = max(def.Pids, sandbox.GVisorMinPids)
	}
	// The admission policy decides on the maximums, and names them.
	limits := ask.Fill(def)
	if err := limits.Check(); err != nil {
		return metadata.Job{}, fmt.Errorf("limits: %w", err)
	}
	digest, err := s.exec.ImageDigest(ctx, b.Image)
	if err != nil && !errors.Is(err, sandbox.ErrNotFound) {
		return metadata.Job{}, err
	}
	var doc admissionInput
	doc.Job.Kind, doc.Job.Image.Name, doc.Job.Image.Digest = b.Kind, b.Image, digest
	doc.Job.CodeDigest, doc.Job.Runtime, doc.Job.Limits = b.Code, string(runtime), limits
	doc.Scenario.ID, doc.Scenario.State, doc.Scenario.TenantID = sc.ID, string(sc.State), sc.TenantID
	doc.Submitter.ID, doc.Submitter.Role, doc.Submitter.TenantID = u.ID, string(u.Role), u.TenantID
	doc.Platform.AllowedImages, doc.Platform.MaxLimits = s.cfg.AllowedImages, s.cfg.MaxLimits
	doc.Platform.Runtimes = []string{string(sandbox.RuntimeRunc)}
	if g, ok := s.exec.(interface{ GVisorAvailable() bool }); ok && g.GVisorAvailable() {
		doc.Platform.Runtimes = append(doc.Platform.Runtimes, string(sandbox.RuntimeGVisor))
	}
	if doc.History.DevSucceeded, err = s.meta.DevSucceeded(ctx, sc.ID); err != nil {
		return metadata.Job{}, err
	}
	adm, err := s.policy.Admit(ctx, doc) // OPA reads it as its JSON
	if err != nil {
		return metadata.Job{}, err
	}
	if !adm.Allow {
		s.notice(ctx, jobDenials, "tenant "+u.TenantID)
		msgs := make([]string, len(adm.Reasons))
		for i, r := range adm.Reasons {
			msgs[i] = r.Message
		}
		return metadata.Job{}, fmt.Errorf("admission denied: %s (policy %s): %w", strings.Join(msgs, "; "), adm.Policy, policy.ErrDenied)
	}
	lim, _ := json.Marshal(limits)
	j, err := s.meta.CreateJob(ctx, metadata.Job{TenantID: u.TenantID, ScenarioID: sc.ID, Submitter: u.ID, Kind: b.Kind, Image: b.Image,
		ImageDigest: digest, CodeDigest: b.Code, Command: b.Command, Runtime: string(runtime), Limits: lim})
	if err != nil {
		return j, err
	}
	s.log.Info("job queued", "job", j.ID, "scenario", sc.ID, "kind", j.Kind, "policy", adm.Policy)
	s.sched.wake()
	return j, nil
}

// visibleJob reads a job the caller may see: another tenant's is 404.
func (s *Server) visibleJob(ctx context.Context, id string) (metadata.Job, error) {
	j, err := s.meta.GetJob(ctx, id)
	if err != nil {
		return j, err
	}
	if !seesTenant(ctx, j.TenantID) {
		return metadata.Job{}, fmt.Errorf("job %s: %w", id, metadata.ErrNotFound)
	}
	return j, nil
}

// readableJob is a job whose outputs and logs the caller may read: a dev
// job, by its submitter. A prod job's are in quarantine: nobody reads them
// here, whatever their role.
func (s *Server) readableJob(ctx context.Context, id string) (metadata.Job, error) {
	j, err := s.visibleJob(ctx, id)
	if err != nil {
		return j, err
	}
	if j.Kind != metadata.JobDev {
		return metadata.Job{}, fmt.Errorf("job %s is a prod job: its outputs and logs are in quarantine and leave only through egress: %w", id, metadata.ErrForbidden)
	}
	if principal(ctx).ID != j.Submitter {
		return metadata.Job{}, fmt.Errorf("job %s: only its submitter reads a dev job's outputs and logs: %w", id, metadata.ErrForbidden)
	}
	return j, nil
}

// cancelJob stops a job: one that has not started ends at once, a running
// one is stopped by the process that drives it.
func (s *Server) cancelJob(ctx context.Context, j metadata.Job) error {
	u := principal(ctx)
	if u.ID != j.Submitter && u.Role != metadata.RoleAdmin {
		return fmt.Errorf("job %s: only its submitter or an admin cancels it: %w", j.ID, metadata.ErrForbidden)
	}
	if sandbox.JobState(j.State).Final() {
		return fmt.Errorf("job %s has ended (%s): %w", j.ID, j.State, metadata.ErrConflict)
	}
	if s.sched != nil && s.sched.cancel(j.ID, fmt.Errorf("cancelled by %s", u.ID)) {
		return nil
	}
	err := s.meta.EndUnassignedJob(ctx, j.ID, string(sandbox.ReasonStopped), "cancelled by "+u.ID+" before it started")
	if errors.Is(err, metadata.ErrConflict) {
		return fmt.Errorf("job %s is driven by another process: %w", j.ID, metadata.ErrConflict)
	}
	return err
}

// jobView is a job with its result, as far as it is known.
func (s *Server) jobView(j metadata.Job) JobView {
	v := JobView{Job: j, Quarantined: j.Kind == metadata.JobProd}
	json.Unmarshal(j.Limits, &v.Limits)
	if j.Record == nil {
		return v
	}
	rec, err := decodeRecord(j)
	if err != nil || rec.Result == nil {
		return v
	}
	r := rec.Result
	v.Outputs, v.Rejected, v.Usage, v.Duration, v.Recovered = r.Outputs, r.Rejected, &r.Usage, r.DurationMS, r.Recovered
	return v
}

// streamLog writes a job's log from the start; with follow, it goes on
// writing what the job prints until the job has ended and its log is
// collected. While the job runs the log is in its workspace; then in its
// quarantine directory (the same bytes: they are moved, not rewritten).
func (s *Server) streamLog(ctx context.Context, w io.Writer, id, stream string, follow bool) {
	flush := flusher(w)
	var off int64
	buf := make([]byte, 32<<10)
	for {
		j, err := s.meta.GetJob(ctx, id)
		if err != nil {
			return
		}
		ended := sandbox.JobState(j.State).Final()
		paths := []string{filepath.Join(s.quarantine(id), stream)}
		if !ended {
			paths = append([]string{filepath.Join(sandbox.JobDir(s.cfg.StateDir, id), stream)}, paths...)
		}
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			for {
				n, err := f.ReadAt(buf, off)
				if n > 0 {
					if _, werr := w.Write(buf[:n]); werr != nil {
						f.Close()
						return
					}
					off += int64(n)
				}
				if err != nil {
					break
				}
			}
			f.Close()
			break
		}
		flush()
		if ended || !follow {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
