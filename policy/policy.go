package policy

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Error classes; test with errors.Is.
var (
	// ErrInvalidPolicy marks a policy directory that does not load or compile.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrDenied: the policy refused what was asked (a job's admission).
	ErrDenied = errors.New("denied by policy")
)

//go:embed rego/*.rego rego/*.json
var embedded embed.FS

// Queries the engine evaluates.
const (
	queryResult     = "data.sluice.egress.result"
	queryThresholds = "data.sluice.egress.thresholds"
	queryAdmission  = "data.sluice.admission.result"
)

// Engine is a loaded, compiled policy.
type Engine struct {
	version    string
	result     rego.PreparedEvalQuery
	thresholds rego.PreparedEvalQuery
	admission  rego.PreparedEvalQuery
}

// Decision is the policy's verdict on one product.
type Decision struct {
	Decision  string   `json:"decision"` // allow | review | deny
	Reasons   []Reason `json:"reasons"`
	Approvals int      `json:"approvals"` // reviewers needed when decision is review
	Policy    string   `json:"policy"`    // policy version (content hash)
}

// Reason is one ground for a decision.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Default returns the embedded default policy.
func Default(ctx context.Context) (*Engine, error) {
	sub, _ := fs.Sub(embedded, "rego")
	return LoadFS(ctx, sub)
}

// Load loads every .rego (except *_test.rego) and .json file of dir; an
// empty dir means the embedded default.
func Load(ctx context.Context, dir string) (*Engine, error) {
	if dir == "" {
		return Default(ctx)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("policy directory %s: not a directory: %w", dir, ErrInvalidPolicy)
	}
	return LoadFS(ctx, os.DirFS(dir))
}

// LoadFS loads a policy from a file system root.
func LoadFS(ctx context.Context, fsys fs.FS) (*Engine, error) {
	var names []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if (strings.HasSuffix(p, ".rego") && !strings.HasSuffix(p, "_test.rego")) || path.Ext(p) == ".json" {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidPolicy)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no .rego files: %w", ErrInvalidPolicy)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		data, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(data))
		h.Write(data)
	}
	res, err := loader.NewFileLoader().WithFS(fsys).WithRegoVersion(ast.RegoV1).Filtered(names, nil)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidPolicy)
	}
	store := inmem.NewFromObject(res.Documents)
	var modules []func(*rego.Rego)
	for name, m := range res.ParsedModules() {
		modules = append(modules, rego.ParsedModule(m))
		_ = name
	}
	prepare := func(query string) (rego.PreparedEvalQuery, error) {
		opts := append([]func(*rego.Rego){rego.Query(query), rego.Store(store), rego.StrictBuiltinErrors(true)}, modules...)
		return rego.New(opts...).PrepareForEval(ctx)
	}
	e := &Engine{version: "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]}
	if e.result, err = prepare(queryResult); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidPolicy)
	}
	if e.thresholds, err = prepare(queryThresholds); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidPolicy)
	}
	if e.admission, err = prepare(queryAdmission); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidPolicy)
	}
	return e, nil
}

// Version identifies the policy by the hash of its files.
func (e *Engine) Version() string { return e.version }

// Thresholds returns the effective thresholds for an input (its
// scenario.thresholds tighten the platform's).
func (e *Engine) Thresholds(ctx context.Context, input any) (map[string]any, error) {
	return object(ctx, e.thresholds, queryThresholds, input)
}

// Decide evaluates the policy on an input document.
func (e *Engine) Decide(ctx context.Context, input any) (*Decision, error) {
	m, err := object(ctx, e.result, queryResult, input)
	if err != nil {
		return nil, err
	}
	d := &Decision{Policy: e.version, Reasons: reasons(m["reasons"])}
	d.Decision, _ = m["decision"].(string)
	switch d.Decision {
	case "allow", "review", "deny":
	default:
		return nil, fmt.Errorf("policy decision %q is not allow, review or deny: %w", d.Decision, ErrInvalidPolicy)
	}
	if n, ok := m["approvals"].(interface{ String() string }); ok {
		fmt.Sscan(n.String(), &d.Approvals)
	}
	return d, nil
}

// object evaluates a prepared query whose value must be an object.
func object(ctx context.Context, q rego.PreparedEvalQuery, query string, input any) (map[string]any, error) {
	rs, err := q.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("policy defines no %s: %w", query, ErrInvalidPolicy)
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is not an object: %w", query, ErrInvalidPolicy)
	}
	return m, nil
}

// Admission is the policy's verdict on a submitted job.
type Admission struct {
	Allow   bool     `json:"allow"`
	Reasons []Reason `json:"reasons"` // every condition the job fails
	Policy  string   `json:"policy"`  // policy version (content hash)
}

// Admit evaluates the admission policy (data.sluice.admission.result) on a
// job's input document (docs/jobs.md). A policy without admission rules
// admits nothing.
func (e *Engine) Admit(ctx context.Context, input any) (*Admission, error) {
	m, err := object(ctx, e.admission, queryAdmission, input)
	if err != nil {
		return nil, err
	}
	a := &Admission{Policy: e.version, Reasons: reasons(m["reasons"])}
	a.Allow, _ = m["allow"].(bool)
	if !a.Allow && len(a.Reasons) == 0 {
		a.Reasons = []Reason{{Code: "denied", Message: "the admission policy gave no reason"}}
	}
	return a, nil
}

// reasons reads a policy's list of {code, message} objects.
func reasons(v any) []Reason {
	out := []Reason{}
	rs, _ := v.([]any)
	for _, r := range rs {
		if rm, ok := r.(map[string]any); ok {
			code, _ := rm["code"].(string)
			msg, _ := rm["message"].(string)
			out = append(out, Reason{Code: code, Message: msg})
		}
	}
	return out
}

// TestResult is the outcome of one Rego test.
type TestResult struct {
	Package string `json:"package"`
	Name    string `json:"name"`
	Pass    bool   `json:"pass"`
	Error   string `json:"error,omitempty"`
}

// Test runs the Rego unit tests (test_* rules, as `opa test` does) of the
// policy in dir, or of the embedded default when dir is empty.
func Test(ctx context.Context, dir string) ([]TestResult, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sluice-policy-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := os.CopyFS(tmp, mustSub(embedded, "rego")); err != nil {
			return nil, err
		}
		dir = tmp
	}
	results, err := tester.Run(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalidPolicy)
	}
	var out []TestResult
	for _, r := range results {
		tr := TestResult{Package: r.Package, Name: r.Name, Pass: r.Pass()}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		} else if r.Fail {
			tr.Error = "failed"
		}
		out = append(out, tr)
	}
	return out, nil
}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}
