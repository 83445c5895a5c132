package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/sandbox"
)

// BenchmarkListJobs: GET /api/v1/jobs of a tenant with 50 finished jobs,
// from many clients at once, through the whole stack (authentication, two
// audit records, the list).
func BenchmarkListJobs(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "data")
	cfg := DefaultConfig
	cfg.DataDir = dir
	srv, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	tn, _ := srv.meta.CreateTenant(ctx, "bench")
	u, _ := srv.meta.CreateUser(ctx, "scientist", metadata.RoleScientist, tn.ID)
	_, secret, _ := srv.meta.CreateToken(ctx, u.ID, cfg.TokenTTL)
	sc, _ := srv.meta.CreateScenario(ctx, metadata.Scenario{TenantID: tn.ID, Name: "bench", Purpose: "p", Applicant: u.ID, Until: time.Now().Add(24 * time.Hour)})
	rec, _ := json.Marshal(sandbox.JobRecord{State: sandbox.JobDone, Result: &sandbox.Result{Reason: sandbox.ReasonExited, Outputs: []sandbox.Output{{Path: "out.csv", Size: 10}}}})
	for range 50 {
		j, err := srv.meta.CreateJob(ctx, metadata.Job{TenantID: tn.ID, ScenarioID: sc.ID, Submitter: u.ID, Kind: "dev", Image: "busybox", ImageDigest: "sha256:x",
			CodeDigest: "sha256:y", Command: []string{"true"}, Runtime: "runc"})
		if err != nil {
			b.Fatal(err)
		}
		code := 0
		if err := srv.meta.RecordJob(ctx, j.ID, metadata.JobProgress{State: "done", Reason: "exited", ExitCode: &code, Record: rec}); err != nil {
			b.Fatal(err)
		}
	}
	token := secret.Reveal()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", hs.URL+"/api/v1/jobs", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
