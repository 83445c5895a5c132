package policy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/policy"
)

func TestRegoUnitTests(t *testing.T) {
	results, err := policy.Test(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 5 {
		t.Fatalf("ran %d Rego tests", len(results))
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s.%s: %s", r.Package, r.Name, r.Error)
		}
	}
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	e, err := policy.Default(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		findings  []map[string]any
		want      string
		approvals int
	}{
		{nil, "allow", 0},
		{[]map[string]any{{"detector": "raw_value", "value": 0, "message": "m"}}, "deny", 0},
		{[]map[string]any{{"detector": "row_level", "value": 6000, "message": "m"}}, "review", 2},
		{[]map[string]any{{"detector": "file_type", "kind": "model", "message": "m"}}, "review", 1},
	}
	for _, tc := range tests {
		in := map[string]any{"findings": tc.findings}
		if tc.findings == nil {
			in["findings"] = []any{}
		}
		d, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Decision != tc.want || d.Approvals != tc.approvals || d.Policy != e.Version() {
			t.Errorf("%v: got %+v, want %s with %d approvals", tc.findings, d, tc.want, tc.approvals)
		}
	}
	th, err := e.Thresholds(ctx, map[string]any{"scenario": map[string]any{"thresholds": map[string]any{"k_anonymity": 25}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := th["k_anonymity"].(interface{ String() string }); v == nil || v.String() != "25" {
		t.Errorf("tightened k_anonymity = %v", th["k_anonymity"])
	}
}

// TestAdmit: the Go side reads the admission policy's verdict and reasons.
func TestAdmit(t *testing.T) {
	ctx := context.Background()
	e, err := policy.Default(ctx)
	if err != nil {
		t.Fatal(err)
	}
	job := map[string]any{
		"job": map[string]any{"kind": "dev", "image": map[string]any{"name": "python", "digest": "sha256:ab"}, "code_digest": "sha256:cd",
			"runtime": "runc", "limits": map[string]any{"cpus": 1}},
		"scenario":  map[string]any{"id": "scn_1", "state": "active", "tenant_id": "t"},
		"submitter": map[string]any{"role": "scientist", "tenant_id": "t"},
		"platform":  map[string]any{"allowed_images": []any{"python"}, "runtimes": []any{"runc"}, "max_limits": map[string]any{"cpus": 8}},
		"history":   map[string]any{"dev_succeeded": []any{}},
	}
	a, err := e.Admit(ctx, job)
	if err != nil || !a.Allow || len(a.Reasons) != 0 || a.Policy != e.Version() {
		t.Fatalf("a dev job: %+v %v", a, err)
	}
	job["job"].(map[string]any)["kind"] = "prod"
	job["scenario"].(map[string]any)["state"] = "suspended"
	a, err = e.Admit(ctx, job)
	if err != nil || a.Allow {
		t.Fatalf("a prod job in a suspended scenario: %+v %v", a, err)
	}
	var codes []string
	for _, r := range a.Reasons {
		codes = append(codes, r.Code)
	}
	if got, want := strings.Join(codes, ","), "prod_needs_dev_run,scenario_not_active"; got != want {
		t.Errorf("reasons %s, want %s", got, want)
	}
}
