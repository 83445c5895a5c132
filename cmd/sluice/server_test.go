package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
