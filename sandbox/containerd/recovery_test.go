package containerd_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sandbox"
)

// buildSluice builds the sluice binary for tests that run it as a process.
func buildSluice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/sluice")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startAndKill runs `sluice sandbox run` for a job and kills the sluice
// process with SIGKILL once the job's task is running.
func startAndKill(t *testing.T, e interface {
	Inspect(context.Context, string) (sandbox.Status, error)
}, bin, stateDir, quarantine, id string, extra ...string) {
	t.Helper()
	args := append([]string{"sandbox", "run", "--namespace", testNamespace, "--containerd-address", address(),
		"--state-dir", stateDir, "--image", "busybox", "--id", id, "--out", quarantine}, extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := e.Inspect(context.Background(), id)
		if err == nil && st.State == sandbox.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("job %s never ran (last state %v, %v)", id, st.State, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL: no chance to clean up
	cmd.Wait()
}

func TestCrashRecovery(t *testing.T) {
	e := newExecutor(t)
	ensureImage(t, e, "busybox")
	bin := buildSluice(t)
	stateDir := t.TempDir()

	// A job still within its deadline is reattached and finishes normally.
	q1 := filepath.Join(t.TempDir(), "q1")
	startAndKill(t, e, bin, stateDir, q1, "crash-live", "--",
		"sh", "-c", "echo started; sleep 10; echo done > /data/out/done.txt; echo finished") // reattached before it writes again: output written while no supervisor reads is lost
	// A job whose deadline passes while nobody watches is stopped as a timeout.
	q2 := filepath.Join(t.TempDir(), "q2")
	startAndKill(t, e, bin, stateDir, q2, "crash-late", "--timeout", "1s", "--", "sleep", "300")
	time.Sleep(1500 * time.Millisecond)

	if ids, _ := e.List(context.Background()); len(ids) != 2 {
		t.Fatalf("after the crash %d job containers exist, want 2 (%v)", len(ids), ids)
	}
	results, err := newRunner(t, e, stateDir).Recover(context.Background())
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	byID := map[string]*sandbox.Result{}
	for _, r := range results {
		byID[r.JobID] = r
	}
	live, late := byID["crash-live"], byID["crash-late"]
	if live == nil || late == nil {
		t.Fatalf("recovered %d results, want both jobs: %+v", len(results), results)
	}
	if live.Reason != sandbox.ReasonExited || live.ExitCode != 0 || !live.Recovered {
		t.Errorf("live job: %s/%d recovered=%v, want exited/0", live.Reason, live.ExitCode, live.Recovered)
	}
	if len(live.Outputs) != 1 || live.Outputs[0].Path != "done.txt" {
		t.Errorf("live job outputs: %+v", live.Outputs)
	}
	if out, _ := os.ReadFile(filepath.Join(q1, "stdout")); string(out) != "started\nfinished\n" {
		t.Errorf("live job stdout across the crash: %q", out)
	}
	if _, err := os.Stat(filepath.Join(q1, "result.json")); err != nil {
		t.Errorf("no result.json for the recovered job: %v", err)
	}
	if late.Reason != sandbox.ReasonTimeout {
		t.Errorf("late job: reason %s, want timeout", late.Reason)
	}
	for _, id := range []string{"crash-live", "crash-late"} {
		assertGone(t, e, id)
	}
	if entries, _ := os.ReadDir(filepath.Join(stateDir, "jobs")); len(entries) != 0 {
		t.Errorf("workspaces left behind: %d", len(entries))
	}
	// Recovering again finds nothing.
	if again, err := newRunner(t, e, stateDir).Recover(context.Background()); err != nil || len(again) != 0 {
		t.Errorf("second recover: %d results, %v", len(again), err)
	}
}
