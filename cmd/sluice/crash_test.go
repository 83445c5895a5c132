package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/server/client"
)

// TestMain lets a test run this binary as sluice itself (SLUICE_TEST_MAIN=1):
// a server that a test can kill with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// serverProcess is sluice server in a process of its own.
type serverProcess struct {
	cmd *exec.Cmd
	url string
}

// startServerProcess starts sluice server on dir and waits until it
// answers /readyz.
func startServerProcess(t *testing.T, dir, imp, namespace string) *serverProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(os.Args[0], "server", "--data-dir", dir, "--import-dir", imp, "--listen", addr, "--namespace", namespace)
	cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1", "SLUICE_MAX_JOBS=1")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, url: "http://" + addr}
	t.Cleanup(func() { p.stop() })
	for range 200 {
		if resp, err := http.Get(p.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(log.Name())
	t.Fatalf("the server did not start: %s", b)
	return nil
}

// kill ends the server as a crash would: SIGKILL, nothing cleaned up.
func (p *serverProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// stop ends it as an operator would (SIGTERM).
func (p *serverProcess) stop() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.cmd.Wait()
	}
}

// TestServerCrashDuringJob: sluice server is killed with SIGKILL while a
// job runs and another waits; started again, it loses nothing — the
// running job is reattached and ends as it would have, once; the queued
// one runs. The jobs are submitted and followed with the CLI.
func TestServerCrashDuringJob(t *testing.T) {
	ctx := context.Background()
	const namespace = "sluice-test-crash"
	flags := sandboxFlags(t)
	flags[1] = namespace
	if code, _, errs := sluice(t, append([]string{"image", "build", "../../images/busybox"}, flags...)...); code != 0 {
		t.Fatalf("image build: exit %d: %s", code, errs)
	}
	base := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(base, "server.log"))
			t.Logf("server log:\n%s", b)
		}
	})
	dir, imp := filepath.Join(base, "data"), filepath.Join(base, "import")
	os.MkdirAll(imp, 0o700)
	corpus, _ := os.ReadFile(corpusSource)
	os.WriteFile(filepath.Join(imp, "residents.csv"), corpus, 0o600)
	classes, _ := os.ReadFile(corpusClasses)

	first := startServerProcess(t, dir, imp, namespace)
	token, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	admin, _ := client.New(first.url, strings.TrimSpace(string(token)))
	if _, err := admin.RegisterDataset(ctx, "residents", "residents.csv", string(classes), ""); err != nil {
		t.Fatal(err)
	}
	tenant, _ := admin.CreateTenant(ctx, "acme")
	alice, err := admin.CreateUser(ctx, "alice", "scientist", tenant.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_SERVER", first.url)
	t.Setenv("SLUICE_TOKEN", alice.Token.Secret)
	code, out, errs := sluice(t, "scenario", "apply", "--name", "crash", "--purpose", "p", "--dataset", "residents:district_code",
		"--until", time.Now().AddDate(0, 1, 0).Format("2006-01-02"), "-o", "json")
	var sc struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &sc) != nil {
		t.Fatalf("scenario apply: exit %d %s %s", code, out, errs)
	}
	if _, err := admin.DecideScenario(ctx, sc.ID, "approve", ""); err != nil {
		t.Fatal(err)
	}
	codeDir := filepath.Join(base, "code")
	os.MkdirAll(codeDir, 0o755)
	os.WriteFile(filepath.Join(codeDir, "run.sh"), []byte("echo start\nsleep 4\necho end\nwc -l < /data/in/residents/data.csv > /data/out/rows.txt\n"), 0o644)
	submit := func() string {
		t.Helper()
		code, out, errs := sluice(t, "job", "submit", "--scenario", sc.ID, "--kind", "dev", "--image", "busybox", "--code", codeDir, "-o", "json", "--", "sh", "/code/run.sh")
		var j struct{ ID string }
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil {
			t.Fatalf("job submit: exit %d %s %s", code, out, errs)
		}
		return j.ID
	}
	running, queued := submit(), submit() // one job at a time: the second waits
	aliceAPI, _ := client.New(first.url, alice.Token.Secret)
	waitRunning(t, aliceAPI, running)
	first.kill()

	second := startServerProcess(t, dir, imp, namespace)
	t.Setenv("SLUICE_SERVER", second.url)
	for _, id := range []string{running, queued} {
		if code, out, errs := sluice(t, "job", "wait", id); code != 0 {
			t.Errorf("job %s after the crash: exit %d %s %s", id, code, out, errs)
		}
		if code, out, _ := sluice(t, "job", "logs", id); code != 0 || strings.Count(out, "start") != 1 || !strings.Contains(out, "end") {
			t.Errorf("job %s stdout: %q (once, whole)", id, out)
		}
		code, out, _ := sluice(t, "job", "show", id, "-o", "json")
		var j struct {
			Outputs   []struct{ Path string }
			Recovered bool
		}
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil || len(j.Outputs) != 1 || j.Outputs[0].Path != "rows.txt" || j.Recovered != (id == running) {
			t.Errorf("job %s: %s (recovered only the one that ran through the crash)", id, out)
		}
	}
	// A graceful stop (SIGTERM) leaves a running job to the next start,
	// which takes it on: it ends once, whole.
	aliceAPI, _ = client.New(second.url, alice.Token.Secret)
	stopped := submit()
	waitRunning(t, aliceAPI, stopped)
	second.stop()
	third := startServerProcess(t, dir, imp, namespace)
	t.Setenv("SLUICE_SERVER", third.url)
	if code, out, errs := sluice(t, "job", "wait", stopped); code != 0 {
		t.Errorf("a job through a graceful stop: exit %d %s %s", code, out, errs)
	}
	if _, out, _ := sluice(t, "job", "logs", stopped); strings.Count(out, "start") != 1 || !strings.Contains(out, "end") {
		t.Errorf("the job through a graceful stop printed %q (once, whole)", out)
	}
	// Once: the trail shows one start of each job's task.
	recs := auditRecords(t, third.url, strings.TrimSpace(string(token)))
	for _, id := range []string{running, queued, stopped} {
		starts := 0
		for _, r := range recs {
			if r.Resource == id && r.Action == "job-running" {
				starts++
			}
		}
		if starts != 1 {
			t.Errorf("job %s went to running %d times, want once", id, starts)
		}
	}
	// The same code in prod: its products go to the gate.
	if code, out, errs := sluice(t, "job", "submit", "--scenario", sc.ID, "--kind", "prod", "--image", "busybox", "--code", codeDir, "--wait", "--", "sh", "/code/run.sh"); code != 0 {
		t.Fatalf("a prod job: exit %d %s %s", code, out, errs)
	}
	var reqs []struct{ ID, State string }
	for deadline := time.Now().Add(time.Minute); len(reqs) == 0 || reqs[0].State != "decided"; time.Sleep(100 * time.Millisecond) {
		_, out, _ := sluice(t, "egress", "list", "-o", "json")
		json.Unmarshal([]byte(out), &reqs)
		if time.Now().After(deadline) {
			t.Fatalf("no decided egress request: %s", out)
		}
	}
	if code, out, errs := sluice(t, "egress", "justify", reqs[0].ID, "--text", "row counts"); code != 0 || !strings.Contains(out, "justified") {
		t.Errorf("egress justify: exit %d %s %s", code, out, errs)
	}
	if code, out, errs := sluice(t, "egress", "show", reqs[0].ID); code != 0 || !strings.Contains(out, "out/rows.txt") || !strings.Contains(out, "stdout") || !strings.Contains(out, "row counts") {
		t.Errorf("egress show: exit %d %s %s", code, out, errs)
	}
	if code, out, errs := sluice(t, "egress", "withdraw", reqs[0].ID); code != 0 || !strings.Contains(out, "withdrawn") {
		t.Errorf("egress withdraw: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := sluice(t, "egress", "withdraw", reqs[0].ID); code != exitUsage || !strings.Contains(errs, "withdrawn already") {
		t.Errorf("withdraw twice: exit %d %s (want 2, conflict)", code, errs)
	}
	third.stop()
	if code, out, errs := sluice(t, "audit", "verify", "--data-dir", dir); code != 0 {
		t.Errorf("audit verify after a crash: exit %d %s %s", code, out, errs)
	}
}

// waitRunning waits until a job runs, then a second more: it has printed
// "start" and sleeps.
func waitRunning(t *testing.T, c *client.Client, id string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		j, err := c.Job(context.Background(), id)
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("job %s never ran: %+v %v", id, j, err)
		}
		if j.State == "running" {
			break
		}
	}
	time.Sleep(time.Second)
}

// auditRecords reads the whole audit trail through the API.
func auditRecords(t *testing.T, url, token string) []audit.Record {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/api/v1/audit?limit=10000", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Records []audit.Record }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Records
}
