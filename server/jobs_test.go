package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"

	"github.com/sluicehq/sluice/images"
	"github.com/sluicehq/sluice/internal/leakcheck"
	ctrd "github.com/sluicehq/sluice/sandbox/containerd"
)

// The job tests run against the real containerd and runc (make test
// installs and starts them) with the images of images/, in a containerd
// namespace of their own.
const jobNamespace = "sluice-test-server"

var imagesOnce sync.Once

// sandboxExecutor connects to containerd and imports busybox and python
// (built once, cached in /var/cache/sluice/images).
func sandboxExecutor(t *testing.T) *ctrd.Executor {
	t.Helper()
	addr := ctrd.DefaultAddress
	if a := os.Getenv("SLUICE_CONTAINERD_ADDRESS"); a != "" {
		addr = a
	}
	e, err := ctrd.New(context.Background(), addr, ctrd.WithNamespace(jobNamespace))
	if err != nil {
		t.Fatalf("containerd is required for this test (make test installs and starts it): %v", err)
	}
	t.Cleanup(func() { e.Close() })
	var ierr error
	imagesOnce.Do(func() {
		ctx := namespaces.WithNamespace(context.Background(), jobNamespace)
		cache := "/var/cache/sluice/images"
		if d := os.Getenv("SLUICE_CACHE"); d != "" {
			cache = filepath.Join(d, "images")
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		for _, name := range []string{"busybox", "python"} {
			if _, ierr = images.Ensure(ctx, e.Client(), filepath.Join("..", "images", name), cache, "overlayfs", log); ierr != nil {
				return
			}
		}
	})
	if ierr != nil {
		t.Fatal(ierr)
	}
	return e
}

// startJobs is a server with the real sandbox and its scheduler running,
// stopped (its jobs left to recovery, none running at the end of a test)
// when the test ends.
func startJobs(t *testing.T, dataDir string) *fixture {
	t.Helper()
	exe := sandboxExecutor(t)
	logs := &bytes.Buffer{}
	cfg := DefaultConfig
	cfg.DataDir, cfg.ImportDir = dataDir, t.TempDir()
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil)), WithExecutor(exe))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.StartJobs(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { cancel(); hs.Close(); srv.Close() })
	token, err := os.ReadFile(filepath.Join(dataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, dir: dataDir, imp: cfg.ImportDir, admin: client{t: t, url: hs.URL, token: strings.TrimSpace(string(token))}, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// recorder keeps a copy of every response body that passes through it.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	r.buf.Write(body)
	r.buf.WriteByte('\n')
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, err
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// codeBundle packs files into a .tar.gz.
func codeBundle(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// upload sends a code bundle and returns its digest.
func (c client) upload(bundle []byte) (string, int) {
	c.t.Helper()
	data, code := c.raw("POST", "/api/v1/code", "application/gzip", bundle)
	var out struct{ Digest string }
	if code == 200 {
		if err := json.Unmarshal(data, &out); err != nil {
			c.t.Fatal(err)
		}
	}
	return out.Digest, code
}

// get reads a body that is not JSON.
func (c client) get(path string) (string, int) {
	c.t.Helper()
	data, code := c.raw("GET", path, "", nil)
	return string(data), code
}

type jobOut struct {
	ID, State, Reason, Error, Kind string
	ExitCode                       *int `json:"exit_code"`
	Outputs                        []struct{ Path, SHA256 string }
	Quarantined                    bool
}

// submit sends a job and returns it, or the API's error.
func (c client) submit(body map[string]any) (jobOut, apiErr, int) {
	c.t.Helper()
	var raw json.RawMessage
	code := c.call("POST", "/api/v1/jobs", body, &raw)
	var j jobOut
	var e apiErr
	if code == 200 {
		json.Unmarshal(raw, &j)
	} else {
		json.Unmarshal(raw, &e)
	}
	return j, e, code
}

// wait polls a job until it has ended.
func (c client) wait(id string) jobOut {
	c.t.Helper()
	var j jobOut
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code := c.call("GET", "/api/v1/jobs/"+id, nil, &j); code != 200 {
			c.t.Fatalf("job %s: %d", id, code)
		}
		if j.State == "done" || j.State == "failed" {
			return j
		}
	}
	c.t.Fatalf("job %s still %s after 3 minutes", id, j.State)
	return j
}

// waitState polls a job until it is in state.
func (c client) waitState(id, state string) {
	c.t.Helper()
	var j jobOut
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c.call("GET", "/api/v1/jobs/"+id, nil, &j)
		if j.State == state {
			return
		}
		if j.State == "done" || j.State == "failed" {
			c.t.Fatalf("job %s ended (%s %s: %s) before it was %s", id, j.State, j.Reason, j.Error, state)
		}
	}
	c.t.Fatalf("job %s is %s, never %s", id, j.State, state)
}

const incomeByCity = `import pandas as pd
df = pd.read_csv("/data/in/residents/data.csv", dtype=str)
df["city"] = df["district_code"].str[:4]
df["monthly_income"] = df["monthly_income"].astype(float)
out = df.groupby("city").agg(n=("monthly_income", "size"), mean_income=("monthly_income", "mean")).reset_index()
out.to_csv("/data/out/income_by_city.csv", index=False)
print("rows", len(df))
`

const topIncomeByCity = `import pandas as pd
df = pd.read_csv("/data/in/residents/data.csv", dtype=str)
df["city"] = df["district_code"].str[:4]
df["monthly_income"] = df["monthly_income"].astype(float)
df.groupby("city")["monthly_income"].max().reset_index().to_csv("/data/out/top_income.csv", index=False)
`

const cityPerPerson = `import pandas as pd
df = pd.read_csv("/data/in/residents/data.csv", dtype=str)
df["city"] = df["district_code"].str[:4]
df[["city"]].to_csv("/data/out/cities.csv", index=False)
`

type egressOut struct {
	ID, State string
	code      string // the job's code digest
	Products  []struct {
		Name, Decision string
		Reasons        json.RawMessage
	}
}

// devThenProd runs a python program in dev, then in prod, each to done,
// and returns the prod job's egress request once decided.
func devThenProd(t *testing.T, c client, job func(kind, image, code string) map[string]any, program string) egressOut {
	t.Helper()
	digest, _ := c.upload(codeBundle(t, map[string]string{"main.py": program}))
	var req egressOut
	for _, kind := range []string{"dev", "prod"} {
		j, e, code := c.submit(job(kind, "python", digest))
		if code != 200 {
			t.Fatalf("the %s job: %d %+v", kind, code, e)
		}
		if j = c.wait(j.ID); j.State != "done" {
			t.Fatalf("the %s job ended %+v", kind, j)
		}
		if kind == "prod" {
			req = waitEgress(t, c, j.ID)
		}
	}
	req.code = digest
	return req
}

// waitEgress polls the egress requests until the job's is decided.
func waitEgress(t *testing.T, c client, job string) egressOut {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var list struct {
			Requests []struct {
				ID    string
				JobID string `json:"job_id"`
				State string
			} `json:"requests"`
		}
		c.call("GET", "/api/v1/egress", nil, &list)
		for _, r := range list.Requests {
			if r.JobID == job && r.State == "decided" {
				var out egressOut
				if code := c.call("GET", "/api/v1/egress/"+r.ID, nil, &out); code != 200 {
					t.Fatalf("egress request %s: %d", r.ID, code)
				}
				return out
			}
		}
	}
	var list json.RawMessage
	c.call("GET", "/api/v1/egress", nil, &list)
	t.Fatalf("no decided egress request for job %s: %s", job, list)
	return egressOut{}
}

// TestJobs is the job flow on the real sandbox with images/python: code
// uploaded and pinned by digest; admission by policy (image allow-list,
// prod only after dev); a dev job over the dev extract whose output and
// log its submitter reads; a prod job over the prod view whose outputs
// and logs nobody reads; another tenant sees nothing; no raw identifier
// anywhere in the data directory.
func TestJobs(t *testing.T) {
	f := startJobs(t, filepath.Join(t.TempDir(), "data"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", f.logs.String())
		}
	})
	// Every API answer of the test is kept, to be searched for raw values.
	answers := &recorder{next: http.DefaultTransport}
	http.DefaultTransport = answers
	t.Cleanup(func() { http.DefaultTransport = answers.next })
	src, classes := f.registerCorpus(t)
	var acme, beta struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "beta"}, &beta)
	_, aliceTok := f.createUser("alice", "scientist", acme.ID)
	_, carolTok := f.createUser("carol", "scientist", acme.ID)
	_, bobTok := f.createUser("bob", "scientist", beta.ID)
	_, audTok := f.createUser("audrey", "auditor", "")
	alice, carol, bob, auditor := f.admin.as(aliceTok), f.admin.as(carolTok), f.admin.as(bobTok), f.admin.as(audTok)
	var sc struct{ ID string }
	alice.call("POST", "/api/v1/scenarios", map[string]any{"name": "income", "purpose": "income by city", "until": time.Now().Add(time.Hour),
		"datasets": []map[string]any{{"name": "residents", "columns": []string{"person_id", "district_code", "monthly_income"}}}}, &sc)
	if code := f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}

	digest, code := alice.upload(codeBundle(t, map[string]string{"main.py": incomeByCity}))
	if code != 200 || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("upload: %d %q", code, digest)
	}
	if _, code := alice.upload([]byte("not a tar.gz")); code != 400 {
		t.Errorf("a bundle that is not a .tar.gz: %d, want 400", code)
	}
	job := func(kind, image, code string) map[string]any {
		return map[string]any{"scenario": sc.ID, "kind": kind, "image": image, "code": code,
			"command": []string{"python3", "/code/main.py"}, "limits": map[string]any{"timeout": "5m"}}
	}

	// Admission: prod before dev, an image off the allow-list, limits
	// above the maximums, another tenant's scenario or code.
	if _, e, code := alice.submit(job("prod", "python", digest)); code != 403 || e.Code != "denied" || !strings.Contains(e.Message, "dev first") {
		t.Errorf("prod before dev: %d %+v", code, e)
	}
	if _, e, code := alice.submit(job("dev", "alpine", digest)); code != 403 || !strings.Contains(e.Message, "allow-list") {
		t.Errorf("an image off the allow-list: %d %+v", code, e)
	}
	big := job("dev", "python", digest)
	big["limits"] = map[string]any{"cpus": 64}
	if _, e, code := alice.submit(big); code != 403 || !strings.Contains(e.Message, "cpus") {
		t.Errorf("64 cpus: %d %+v", code, e)
	}
	if _, _, code := bob.submit(job("dev", "python", digest)); code != 404 {
		t.Errorf("another tenant's scenario: %d, want 404", code)
	}
	if _, _, code := f.admin.submit(job("dev", "python", digest)); code != 403 {
		t.Errorf("an admin submits: %d, want 403", code)
	}

	// Dev: the submitter reads its output and log.
	dev, e, code := alice.submit(job("dev", "python", digest))
	if code != 200 {
		t.Fatalf("dev job: %d %+v", code, e)
	}
	dev = alice.wait(dev.ID)
	if dev.State != "done" || dev.Reason != "exited" || dev.ExitCode == nil || *dev.ExitCode != 0 || len(dev.Outputs) != 1 {
		t.Fatalf("dev job ended %+v", dev)
	}
	body, code := alice.get("/api/v1/jobs/" + dev.ID + "/output?path=income_by_city.csv")
	if code != 200 || !strings.HasPrefix(body, "city,n,mean_income") {
		t.Errorf("dev output: %d %.80q", code, body)
	}
	logs, code := alice.get("/api/v1/jobs/" + dev.ID + "/logs/stdout")
	if code != 200 || !strings.HasPrefix(logs, "rows ") || strings.HasPrefix(logs, "rows 6000") {
		t.Errorf("dev stdout: %d %q (the dev extract is a sample, not the 6000 rows)", code, logs)
	}
	if _, code := carol.get("/api/v1/jobs/" + dev.ID + "/output?path=income_by_city.csv"); code != 403 {
		t.Errorf("another scientist of the tenant reads a dev output: %d, want 403", code)
	}
	for _, p := range []string{"/api/v1/jobs/" + dev.ID, "/api/v1/jobs/" + dev.ID + "/logs/stdout"} {
		if _, code := bob.get(p); code != 404 {
			t.Errorf("another tenant: GET %s: %d, want 404", p, code)
		}
	}
	var list struct{ Jobs []jobOut }
	bob.call("GET", "/api/v1/jobs", nil, &list)
	if len(list.Jobs) != 0 {
		t.Errorf("another tenant lists %d jobs", len(list.Jobs))
	}

	// Prod: the same code, now admitted; its outputs and logs are
	// readable by no role.
	prod, e, code := alice.submit(job("prod", "python", digest))
	if code != 200 {
		t.Fatalf("prod job after dev: %d %+v", code, e)
	}
	prod = alice.wait(prod.ID)
	if prod.State != "done" || !prod.Quarantined || len(prod.Outputs) != 1 {
		t.Fatalf("prod job ended %+v", prod)
	}
	for _, who := range []client{alice, f.admin, auditor, carol} {
		for _, p := range []string{"/output?path=income_by_city.csv", "/logs/stdout", "/logs/stderr"} {
			if body, code := who.get("/api/v1/jobs/" + prod.ID + p); code != 403 || strings.Contains(body, "rows") {
				t.Errorf("a prod job's %s: %d, want 403", p, code)
			}
		}
	}
	if q, err := os.ReadFile(filepath.Join(f.dir, "quarantine", prod.ID, "stdout")); err != nil || !strings.HasPrefix(string(q), "rows 6000") {
		t.Errorf("the prod job's stdout in quarantine: %q %v (the prod view has every row)", q, err)
	}

	// The prod job's products went to the gate: decisions, reasons and
	// findings for its scientist, nothing for another tenant.
	req := waitEgress(t, alice, prod.ID)
	decisions := map[string]string{}
	for _, p := range req.Products {
		decisions[p.Name] = p.Decision
	}
	t.Logf("the gate's decisions on the prod job's products: %v", decisions)
	if len(decisions) != 3 || decisions["out/income_by_city.csv"] == "" || decisions["stdout"] == "" || decisions["stderr"] != "allow" {
		t.Errorf("the prod job's products: %+v", req.Products)
	}
	if _, code := bob.get("/api/v1/egress/" + req.ID); code != 404 {
		t.Errorf("another tenant reads an egress request: %d, want 404", code)
	}
	why := map[string]string{"text": "city-level means for the labour bureau"}
	for who, want := range map[*client]int{&alice: 200, &bob: 404, &f.admin: 403} {
		if code := who.call("POST", "/api/v1/egress/"+req.ID+"/justify", why, nil); code != want {
			t.Errorf("justify as %s: %d, want %d", who.token[:12], code, want)
		}
	}
	var justified struct{ Justification string }
	alice.call("GET", "/api/v1/egress/"+req.ID, nil, &justified)
	if justified.Justification != why["text"] {
		t.Errorf("the justification: %q", justified.Justification)
	}
	// A product that gives people away is denied: the top income of each
	// city is one person's exact value.
	leakReq := devThenProd(t, alice, job, topIncomeByCity)
	for _, p := range leakReq.Products {
		if p.Name == "out/top_income.csv" && (p.Decision != "deny" || !strings.Contains(string(p.Reasons), "extreme")) {
			t.Errorf("the top incomes: %s %s, want deny (extreme)", p.Decision, p.Reasons)
		}
	}
	var withdrawn struct{ State string }
	if code := alice.call("POST", "/api/v1/egress/"+leakReq.ID+"/withdraw", nil, &withdrawn); code != 200 || withdrawn.State != "withdrawn" {
		t.Errorf("withdraw: %d %+v", code, withdrawn)
	}
	if code := alice.call("POST", "/api/v1/egress/"+leakReq.ID+"/withdraw", nil, nil); code != 409 {
		t.Errorf("withdraw twice: %d, want 409", code)
	}

	// Records (one city per person) go to review: a reviewer sees them in
	// the queue with their evidence and reads their content; nobody else
	// does, and no other product's content is shown.
	_, revTok := f.createUser("rita", "reviewer", "")
	rita := f.admin.as(revTok)
	rowsReq := devThenProd(t, alice, job, cityPerPerson)
	var queue struct {
		Items []struct {
			Request    string
			CodeDigest string `json:"code_digest"`
			Purpose    string
			Product    struct{ Name, Decision string }
		}
	}
	if code := rita.call("GET", "/api/v1/reviews", nil, &queue); code != 200 {
		t.Fatalf("the review queue: %d", code)
	}
	var queued []string
	for _, it := range queue.Items {
		queued = append(queued, it.Request+" "+it.Product.Name)
		if it.Product.Decision != "review" || it.CodeDigest != rowsReq.code || it.Purpose != "income by city" {
			t.Errorf("a queue item: %+v", it)
		}
	}
	if len(queued) != 1 || queued[0] != rowsReq.ID+" out/cities.csv" {
		t.Fatalf("the review queue holds %v, want the records product alone", queued)
	}
	if body, code := rita.get("/api/v1/reviews/" + rowsReq.ID + "/content?product=out/cities.csv"); code != 200 || !strings.HasPrefix(body, "city\n") {
		t.Errorf("a reviewer reads the product: %d %.40q", code, body)
	}
	for _, tc := range []struct {
		who  client
		path string
		want int
	}{
		{alice, "/api/v1/reviews", 403},
		{f.admin, "/api/v1/reviews/" + rowsReq.ID + "/content?product=out/cities.csv", 403},
		{alice, "/api/v1/reviews/" + rowsReq.ID + "/content?product=out/cities.csv", 403},
		{rita, "/api/v1/reviews/" + rowsReq.ID + "/content?product=stdout", 403},          // allowed: not for review
		{rita, "/api/v1/reviews/" + rowsReq.ID + "/content?product=../../sluice.db", 404}, // not a product
	} {
		if _, code := tc.who.get(tc.path); code != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, code, tc.want)
		}
	}

	// Nothing of the raw identifiers in the data directory.
	raw := leakcheck.New(identifierValues(t, src, string(classes)))
	filepath.Walk(f.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			if n := raw.Count(b); n > 0 {
				t.Errorf("%s holds %d raw identifier values", p, n)
			}
		}
		return nil
	})
	if n := raw.Count(f.logs.Bytes()); n > 0 {
		t.Errorf("the server's log holds %d raw identifier values", n)
	}
	if n := raw.Count(answers.bytes()); n > 0 || len(answers.bytes()) == 0 {
		t.Errorf("the API's answers (%d bytes) hold %d raw identifier values", len(answers.bytes()), n)
	}
	// The metrics count the jobs by state, the queue and the gate's checks.
	resp, err := http.Get(f.admin.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`sluice_jobs{state="done"} 6`, `sluice_job_queue_depth 0`, "sluice_gate_check_seconds_count 9"} {
		if !strings.Contains(string(metricsText), want+"\n") {
			t.Errorf("/metrics has no line %q", want)
		}
	}
	var verify struct {
		Intact  bool
		Records int64
	}
	if code := auditor.call("GET", "/api/v1/audit/verify", nil, &verify); code != 200 || !verify.Intact || verify.Records == 0 {
		t.Errorf("audit verify: %d %+v", code, verify)
	}
}

// oneScenario is a server with the sandbox, the residents source, a
// tenant with one scientist, and an approved scenario of the district code:
// the server, the scientist, the tenant's ID and the scenario's.
func oneScenario(t *testing.T, name string) (*fixture, client, string, string) {
	t.Helper()
	f := startJobs(t, filepath.Join(t.TempDir(), "data"))
	f.registerCorpus(t)
	var acme struct{ ID string }
	f.admin.call("POST", "/api/v1/tenants", map[string]string{"name": "acme"}, &acme)
	_, aliceTok := f.createUser("alice", "scientist", acme.ID)
	alice := f.admin.as(aliceTok)
	var sc struct{ ID string }
	alice.call("POST", "/api/v1/scenarios", map[string]any{"name": name, "purpose": "p", "until": time.Now().Add(time.Hour),
		"datasets": []map[string]any{{"name": "residents", "columns": []string{"district_code"}}}}, &sc)
	if code := f.admin.call("POST", "/api/v1/scenarios/"+sc.ID+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	return f, alice, acme.ID, sc.ID
}

// TestJobsStopWithTheirScenario: suspension stops a running job at once
// and refuses new ones; a followed log streams until the job ends;
// cancel stops a job; termination refuses jobs.
func TestJobsStopWithTheirScenario(t *testing.T) {
	f, alice, _, scID := oneScenario(t, "stops")
	sleeper, _ := alice.upload(codeBundle(t, map[string]string{"run.sh": "for i in 1 2 3; do echo tick $i; sleep 0.3; done\nsleep ${1:-0}\n"}))
	job := func(args ...string) map[string]any {
		return map[string]any{"scenario": scID, "kind": "dev", "image": "busybox", "code": sleeper, "command": append([]string{"sh", "/code/run.sh"}, args...)}
	}

	// A followed log: everything the job prints, and the response ends
	// when the job does.
	j, e, code := alice.submit(job())
	if code != 200 {
		t.Fatalf("submit: %d %+v", code, e)
	}
	alice.waitState(j.ID, "running")
	logs, code := alice.get("/api/v1/jobs/" + j.ID + "/logs/stdout?follow=true")
	if code != 200 || logs != "tick 1\ntick 2\ntick 3\n" {
		t.Errorf("followed log: %d %q", code, logs)
	}
	if j = alice.wait(j.ID); j.State != "done" {
		t.Errorf("the followed job ended %+v", j)
	}

	// Suspension stops a running job at once (R8) and admits no other.
	long, _, _ := alice.submit(job("300"))
	alice.waitState(long.ID, "running")
	f.admin.call("POST", "/api/v1/scenarios/"+scID+"/suspend", nil, nil)
	if long = alice.wait(long.ID); long.Reason != "stopped" {
		t.Errorf("a job of a suspended scenario ended %+v, want stopped", long)
	}
	if _, e, code := alice.submit(job()); code != 403 || !strings.Contains(e.Message, "suspended") {
		t.Errorf("a job in a suspended scenario: %d %+v", code, e)
	}
	f.admin.call("POST", "/api/v1/scenarios/"+scID+"/resume", nil, nil)

	// Cancel, by the submitter.
	long, _, _ = alice.submit(job("300"))
	alice.waitState(long.ID, "running")
	if code := alice.call("POST", "/api/v1/jobs/"+long.ID+"/cancel", nil, nil); code != 200 {
		t.Errorf("cancel: %d", code)
	}
	if long = alice.wait(long.ID); long.Reason != "stopped" {
		t.Errorf("a cancelled job ended %+v", long)
	}

	f.admin.call("POST", "/api/v1/scenarios/"+scID+"/terminate", nil, nil)
	if _, e, code := alice.submit(job()); code != 403 || !strings.Contains(e.Message, "terminated") {
		t.Errorf("a job in a terminated scenario: %d %+v", code, e)
	}
	// …and its views open for no one: their key is erased.
	if _, _, err := f.srv.openView(viewObject(scID, "residents", 1, ViewDev)); err == nil {
		t.Error("a terminated scenario's view opens")
	}

	// An expired scenario refuses jobs too.
	var short struct{ ID string }
	alice.call("POST", "/api/v1/scenarios", map[string]any{"name": "short", "purpose": "p", "until": time.Now().Add(1500 * time.Millisecond),
		"datasets": []map[string]any{{"name": "residents", "columns": []string{"district_code"}}}}, &short)
	f.admin.call("POST", "/api/v1/scenarios/"+short.ID+"/approve", nil, nil)
	time.Sleep(1600 * time.Millisecond)
	exp := job()
	exp["scenario"] = short.ID
	if _, e, code := alice.submit(exp); code != 403 || !strings.Contains(e.Message, "expired") {
		t.Errorf("a job in an expired scenario: %d %+v", code, e)
	}
}

// TestJobAlerts: a tenant's burst of denied jobs, of failed jobs and of
// jobs stopped at a limit each raise an alert (R6).
func TestJobAlerts(t *testing.T) {
	f, alice, tenant, scID := oneScenario(t, "alerts")
	code, _ := alice.upload(codeBundle(t, map[string]string{"run.sh": "sleep ${1:-0}\nexit ${2:-0}\n"}))
	job := func(kind string, limits map[string]any, args ...string) map[string]any {
		return map[string]any{"scenario": scID, "kind": kind, "image": "busybox", "code": code, "limits": limits,
			"command": append([]string{"sh", "/code/run.sh"}, args...)}
	}
	kinds := func() map[string]int {
		var out struct {
			Alerts []struct{ Kind, Subject string }
		}
		f.admin.call("GET", "/api/v1/alerts", nil, &out)
		n := map[string]int{}
		for _, a := range out.Alerts {
			if a.Subject == "tenant "+tenant {
				n[a.Kind]++
			}
		}
		return n
	}
	for range jobDenials.Threshold {
		if _, _, code := alice.submit(job("prod", nil)); code != 403 {
			t.Fatalf("prod before dev: %d", code)
		}
	}
	var ids []string
	for range jobFailures.Threshold {
		j, e, code := alice.submit(job("dev", nil, "0", "3"))
		if code != 200 {
			t.Fatalf("submit: %d %+v", code, e)
		}
		ids = append(ids, j.ID)
	}
	for range jobLimits.Threshold {
		j, _, _ := alice.submit(job("dev", map[string]any{"timeout": "1s"}, "30"))
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		alice.wait(id)
	}
	if got := kinds(); got["job-denials"] != 1 || got["job-failures"] != 1 || got["job-limits"] != 1 {
		t.Errorf("alerts for the tenant: %v, want one of each job kind", got)
	}
}
