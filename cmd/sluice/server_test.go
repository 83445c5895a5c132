package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/server"
)

// TestServerCommand starts sluice server, reaches it over loopback with the
// administrator's token, and stops it with its context (as SIGTERM does).
func TestServerCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	t.Setenv("SLUICE_LISTEN", "127.0.0.1:1") // the flag wins over the environment
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var out, errb bytes.Buffer
	go func() { done <- run(ctx, []string{"server", "--data-dir", dir, "--listen", addr}, &out, &errb) }()
	var token []byte
	for range 100 {
		if token, err = os.ReadFile(filepath.Join(dir, "admin.token")); err == nil {
			if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("whoami: %v %v (stderr: %s)", resp, err, errb.String())
	}
	resp.Body.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after the stop: %s", code, errb.String())
	}
	if bytes.Contains(out.Bytes(), bytes.TrimSpace(token)) || bytes.Contains(errb.Bytes(), bytes.TrimSpace(token)) {
		t.Error("the token was printed")
	}
	if code, _, errs := sluice(t, "server", "--listen", addr); code != exitUsage || !strings.Contains(errs, "data_dir") {
		t.Errorf("without a data directory: exit %d: %s", code, errs)
	}
}

// TestTenantAndUserCommands: the CLI against a running server, with the
// exit codes of the server's answers.
func TestTenantAndUserCommands(t *testing.T) {
	serveForCLI(t)

	code, out, errs := sluice(t, "tenant", "create", "acme", "-o", "json")
	var tenant struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &tenant) != nil || tenant.ID == "" {
		t.Fatalf("tenant create: exit %d %s %s", code, out, errs)
	}
	code, out, errs = sluice(t, "user", "create", "alice", "--role", "scientist", "--tenant", tenant.ID, "-o", "json")
	var alice struct{ Token struct{ Secret string } }
	if code != 0 || json.Unmarshal([]byte(out), &alice) != nil || alice.Token.Secret == "" {
		t.Fatalf("user create: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := sluice(t, "tenant", "create", "acme"); code != exitUsage || !strings.Contains(errs, "already exists") {
		t.Errorf("a duplicate tenant: exit %d %s", code, errs)
	}
	if code, _, errs := sluice(t, "user", "create", "bob"); code != exitUsage || !strings.Contains(errs, "--role") {
		t.Errorf("no role: exit %d %s", code, errs)
	}
	t.Setenv("SLUICE_TOKEN", alice.Token.Secret)
	if code, out, _ := sluice(t, "tenant", "list"); code != 0 || !strings.Contains(out, "acme") {
		t.Errorf("alice lists tenants: exit %d\n%s", code, out)
	}
	if code, _, errs := sluice(t, "tenant", "create", "evil"); code != exitNo || !strings.Contains(errs, "may not") {
		t.Errorf("alice creates a tenant: exit %d %s, want 1 (forbidden)", code, errs)
	}
	t.Setenv("SLUICE_TOKEN", "sluice_wrong")
	if code, _, _ := sluice(t, "user", "list"); code != exitUsage {
		t.Errorf("a wrong token: exit %d, want 2", code)
	}
	if code, _, _ := sluice(t, "user", "list", "--server", "http://127.0.0.1:1"); code != exitFailed {
		t.Errorf("no server: exit %d, want 4", code)
	}
}

// TestDatasetRegisterCommand: register, list and show against a server.
func TestDatasetRegisterCommand(t *testing.T) {
	serveForCLI(t)
	code, out, errs := sluice(t, "dataset", "register", "residents", "residents.csv", "--classes", corpusClasses)
	if code != 0 || !strings.Contains(out, "dataset residents version 1 registered: csv, 6000 rows") {
		t.Fatalf("register: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := sluice(t, "dataset", "show", "residents"); code != 0 || !strings.Contains(out, "person_id") || !strings.Contains(out, "identifier") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	if code, out, _ := sluice(t, "dataset", "list", "-o", "json"); code != 0 || !strings.Contains(out, `"version": 1`) {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	if code, _, errs := sluice(t, "dataset", "register", "residents", "residents.csv"); code != exitUsage || !strings.Contains(errs, "--classes") {
		t.Errorf("no classes: exit %d %s", code, errs)
	}
	if code, _, _ := sluice(t, "dataset", "show", "nothing"); code != exitUsage {
		t.Errorf("an unknown dataset: exit %d, want 2", code)
	}
	// From this machine, streamed, with progress.
	code, out, errs = sluice(t, "dataset", "register", "residents", corpusSource, "--upload", "--classes", corpusClasses)
	if code != 0 || !strings.Contains(out, "dataset residents version 2 registered: csv, 6000 rows") || !strings.Contains(errs, "(100%)") || !strings.Contains(errs, "checking against the classification") {
		t.Errorf("register --upload: exit %d\n%s%s", code, out, errs)
	}
	// A profile's YAML file.
	prof := filepath.Join(t.TempDir(), "no-income.yaml")
	os.WriteFile(prof, []byte("name: no-income\ncolumns:\n  monthly_income: {op: drop}\n"), 0o600)
	if code, out, errs := sluice(t, "dataset", "register", "residents", "residents.csv", "--classes", corpusClasses, "--profile", prof, "-o", "json"); code != 0 || !strings.Contains(out, `"profile": "no-income"`) {
		t.Errorf("register --profile FILE: exit %d %s %s", code, out, errs)
	}
	// A registration that fails says why, with its exit code, and keeps the
	// upload.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("columns:\n  no_such_column: {class: identifier}\n"), 0o600)
	if code, _, errs := sluice(t, "dataset", "register", "residents", corpusSource, "--upload", "--classes", bad); code != exitUsage || !strings.Contains(errs, "no_such_column") || !strings.Contains(errs, "stays on the server") {
		t.Errorf("register --upload with a wrong classification: exit %d %s", code, errs)
	}
	if code, _, errs := sluice(t, "dataset", "register", "residents", "residents.csv", "--classes", bad); code != exitUsage || !strings.Contains(errs, "no_such_column") {
		t.Errorf("register with a wrong classification: exit %d %s", code, errs)
	}
	if code, _, errs := sluice(t, "dataset", "register", "residents", "no-such-file.csv", "--upload", "--classes", corpusClasses); code != exitUsage || !strings.Contains(errs, "no-such-file.csv") {
		t.Errorf("--upload of a missing file: exit %d %s", code, errs)
	}
}

// TestScenarioCommands: apply as a scientist, approve and terminate as the
// administrator, through the CLI.
func TestScenarioCommands(t *testing.T) {
	adminTok := serveForCLI(t)
	if code, _, errs := sluice(t, "dataset", "register", "residents", "residents.csv", "--classes", corpusClasses); code != 0 {
		t.Fatal(errs)
	}
	var tenant struct{ ID string }
	_, out, _ := sluice(t, "tenant", "create", "acme", "-o", "json")
	json.Unmarshal([]byte(out), &tenant)
	var alice struct{ Token struct{ Secret string } }
	_, out, _ = sluice(t, "user", "create", "alice", "--role", "scientist", "--tenant", tenant.ID, "-o", "json")
	json.Unmarshal([]byte(out), &alice)

	t.Setenv("SLUICE_TOKEN", alice.Token.Secret)
	until := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
	code, out, errs := sluice(t, "scenario", "apply", "--name", "income-by-city", "--purpose", "income by city",
		"--dataset", "residents:district_code,monthly_income", "--until", until, "-o", "json")
	var sc struct{ ID, State string }
	if code != 0 || json.Unmarshal([]byte(out), &sc) != nil || sc.State != "pending" {
		t.Fatalf("apply: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := sluice(t, "scenario", "approve", sc.ID); code != exitNo || !strings.Contains(errs, "may not") {
		t.Errorf("the scientist approves: exit %d %s, want 1", code, errs)
	}
	if code, _, errs := sluice(t, "scenario", "apply", "--name", "x", "--purpose", "p", "--dataset", "residents", "--until", until); code != exitUsage || !strings.Contains(errs, "--dataset") {
		t.Errorf("a dataset without columns: exit %d %s", code, errs)
	}
	t.Setenv("SLUICE_TOKEN", adminTok)
	if code, out, _ := sluice(t, "scenario", "approve", sc.ID, "--comment", "minimum necessary"); code != 0 || !strings.Contains(out, "active") {
		t.Errorf("approve: exit %d %s", code, out)
	}
	t.Setenv("SLUICE_TOKEN", alice.Token.Secret)
	if code, out, errs := sluice(t, "scenario", "amend", sc.ID, "--dataset", "residents:district_code"); code != 0 || !strings.Contains(out, "amendment 2 proposed") {
		t.Errorf("amend: exit %d %s %s", code, out, errs)
	}
	t.Setenv("SLUICE_TOKEN", adminTok)
	if code, out, errs := sluice(t, "scenario", "approve-amendment", sc.ID, "2"); code != 0 || !strings.Contains(out, "version 2") {
		t.Errorf("approve-amendment: exit %d %s %s", code, out, errs)
	}
	if code, out, _ := sluice(t, "scenario", "amendments", sc.ID); code != 0 || !strings.Contains(out, "approved") || !strings.Contains(out, "residents@1:district_code") {
		t.Errorf("amendments: exit %d %s", code, out)
	}
	if code, _, errs := sluice(t, "scenario", "reject-amendment", sc.ID, "two"); code != exitUsage || !strings.Contains(errs, "VERSION") {
		t.Errorf("a bad version: exit %d %s", code, errs)
	}
	if code, out, _ := sluice(t, "scenario", "terminate", sc.ID); code != 0 || !strings.Contains(out, "terminated") {
		t.Errorf("terminate: exit %d %s", code, out)
	}
	if code, out, _ := sluice(t, "scenario", "show", sc.ID); code != 0 || !strings.Contains(out, "destroyed") {
		t.Errorf("show: exit %d %s", code, out)
	}
	if code, _, _ := sluice(t, "scenario", "resume", sc.ID); code != exitUsage {
		t.Errorf("resume a terminated scenario: exit %d, want 2 (conflict)", code)
	}
	if code, out, errs := sluice(t, "alert", "list", "--since", "1h"); code != 0 || !strings.Contains(out, "KIND") {
		t.Errorf("alert list: exit %d %s %s", code, out, errs)
	}
}

// serveForCLI runs a server for the CLI tests (the corpus source in its
// import directory as residents.csv), points SLUICE_SERVER at it and
// SLUICE_TOKEN at its administrator, and returns that token.
func serveForCLI(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := server.DefaultConfig
	cfg.DataDir, cfg.ImportDir = dir, t.TempDir()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	admin, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(admin))
	corpus, err := os.ReadFile(corpusSource)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.ImportDir, "residents.csv"), corpus, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_SERVER", hs.URL)
	t.Setenv("SLUICE_TOKEN", token)
	return token
}

// TestContexts: a named context gives the server and token when neither
// flags nor the environment do.
func TestContexts(t *testing.T) {
	token := serveForCLI(t)
	url := os.Getenv("SLUICE_SERVER")
	dir := t.TempDir()
	t.Setenv("SLUICE_CONFIG", filepath.Join(dir, "config.yaml"))
	t.Setenv("SLUICE_SERVER", "")
	t.Setenv("SLUICE_TOKEN", "")
	tokFile := filepath.Join(dir, "admin.token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	if code, _, errs := sluice(t, "tenant", "list"); code != exitUsage || !strings.Contains(errs, "sluice context set") {
		t.Errorf("no token anywhere: exit %d %s", code, errs)
	}
	if code, out, errs := sluice(t, "context", "set", "local", "--server", url, "--token-file", tokFile); code != 0 || !strings.Contains(out, "context local") {
		t.Fatalf("context set: exit %d %s %s", code, out, errs)
	}
	sluice(t, "context", "set", "other", "--server", "http://127.0.0.1:1")
	if fi, err := os.Stat(filepath.Join(dir, "config.yaml")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the configuration file: %v %v, want 0600", err, fi.Mode())
	}
	if code, out, errs := sluice(t, "tenant", "list"); code != 0 || !strings.Contains(out, "NAME") {
		t.Errorf("tenant list with the current context: exit %d %s %s", code, out, errs)
	}
	code, out, _ := sluice(t, "context", "list")
	current := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		for _, name := range []string{"local", "other"} {
			if strings.Contains(l, " "+name+" ") {
				current[name] = strings.HasPrefix(l, "*")
			}
		}
	}
	if code != 0 || !current["local"] || current["other"] {
		t.Errorf("context list (local current, other not): %s", out)
	}
	if code, _, errs := sluice(t, "tenant", "list", "--context", "nope"); code != exitUsage || !strings.Contains(errs, "nope") {
		t.Errorf("an unknown context: exit %d %s", code, errs)
	}
	if code, _, errs := sluice(t, "context", "use", "nope"); code != exitUsage || !strings.Contains(errs, "nope") {
		t.Errorf("use an unknown context: exit %d %s", code, errs)
	}
	// The environment wins over the context.
	t.Setenv("SLUICE_SERVER", url)
	t.Setenv("SLUICE_TOKEN", "sluice_wrong")
	if code, _, _ := sluice(t, "tenant", "list"); code == 0 {
		t.Error("SLUICE_TOKEN did not win over the context's token file")
	}
}
