package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/egress"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/sandbox"
)

// gates keeps a gate for each dataset version: its index built once from
// the sealed raw source (decrypted as it is read) and its thresholds asked
// of the policy once, reused by every check (a version is immutable; a
// gate is safe to share). At most maxGates are kept, the oldest built goes
// first; one whose build failed is built again next time.
type gates struct {
	mu    sync.Mutex
	byKey map[string]*gateEntry
	order []string // oldest built first
}

type gateEntry struct {
	once sync.Once
	gate *egress.Gate
	err  error
}

const maxGates = 4

// forget drops key if it is still e (the lock held).
func (g *gates) forget(key string, e *gateEntry) {
	if g.byKey[key] != e {
		return
	}
	delete(g.byKey, key)
	g.order = slices.DeleteFunc(g.order, func(k string) bool { return k == key })
}

func (s *Server) gate(ctx context.Context, v metadata.DatasetVersion) (*egress.Gate, error) {
	key := fmt.Sprintf("%s@%d", v.Name, v.Version)
	g := &s.gates
	g.mu.Lock()
	if g.byKey == nil {
		g.byKey = map[string]*gateEntry{}
	}
	e := g.byKey[key]
	if e == nil {
		e = &gateEntry{}
		g.byKey[key], g.order = e, append(g.order, key)
		if len(g.order) > maxGates {
			g.forget(g.order[0], g.byKey[g.order[0]])
		}
	}
	g.mu.Unlock()
	e.once.Do(func() {
		classes, err := dataset.ParseClasses(v.Name+".classes.yaml", []byte(v.Classes))
		if err != nil {
			e.err = err
			return
		}
		key, err := s.master.Unwrap(v.WrappedKey)
		if err != nil {
			e.err = err
			return
		}
		// The index may read the source again later (digests on first
		// need), after this request: its opener outlives ctx.
		ix, err := egress.BuildIndex(ctx, v.Object, classes, s.sealedRead(context.WithoutCancel(ctx), key))
		if err != nil {
			e.err = err
			return
		}
		e.gate = egress.NewGate(ix, s.policy)
	})
	if e.err != nil {
		g.mu.Lock()
		g.forget(key, e)
		g.mu.Unlock()
	}
	return e.gate, e.err
}

// decisionRank orders decisions from the most permissive.
var decisionRank = map[string]int{"allow": 0, "review": 1, "deny": 2}

// productCheck is one product's check against one source dataset.
type productCheck struct {
	Dataset  string           `json:"dataset"`
	Decision string           `json:"decision"`
	Findings []egress.Finding `json:"findings"`
	Reasons  []policy.Reason  `json:"reasons"`
	Input    *egress.Input    `json:"input,omitempty"`
	Error    string           `json:"error,omitempty"`
	Timing   *egress.Timing   `json:"timing,omitempty"`
}

// requestEgress makes a finished prod job's egress request — each output
// and each log is a product — and has the gate check every product
// against the raw source of each of the scenario's datasets. A product
// takes the strictest of its decisions. A check that cannot run denies the
// product (fail closed). Done again after a crash, it redoes the checks.
func (s *Server) requestEgress(ctx context.Context, j metadata.Job) error {
	if j.Kind != metadata.JobProd || j.State != string(sandbox.JobDone) {
		return nil
	}
	req, err := s.meta.EgressRequestOfJob(ctx, j.ID)
	if errors.Is(err, metadata.ErrNotFound) {
		if err := s.appendAudit(ctx, audit.Record{Actor: "system", Tenant: j.TenantID, Action: "egress-request", Resource: j.ID, Result: "attempt"}); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		req, err = s.meta.CreateEgressRequest(ctx, metadata.EgressRequest{JobID: j.ID, TenantID: j.TenantID, ScenarioID: j.ScenarioID})
	}
	if err != nil {
		return err
	}
	if req.State == metadata.EgressDecided || req.State == metadata.EgressWithdrawn {
		return nil
	}
	sc, err := s.meta.GetScenario(ctx, j.ScenarioID)
	if err != nil {
		return err
	}
	var res *sandbox.Result
	if rec, err := decodeRecord(j); err == nil { // j was read with its record
		res = rec.Result
	}
	if res == nil {
		return fmt.Errorf("job %s has no result", j.ID)
	}
	products := []string{res.Stdout, res.Stderr}
	for _, o := range res.Outputs {
		products = append(products, "out/"+o.Path)
	}
	for _, name := range products {
		if err := s.checkProduct(ctx, req, sc, name, s.productPath(j.ID, name)); err != nil {
			return fmt.Errorf("recording the decision on %s: %w", name, err) // checking, until the next start
		}
	}
	if err := s.appendAudit(ctx, audit.Record{Actor: "system", Tenant: j.TenantID, Action: "egress-decided", Resource: req.ID, Result: "ok"}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return s.meta.SetEgressState(ctx, req.ID, metadata.EgressDecided)
}

// productPath is where a product of a job's egress request lies in its
// quarantine: its logs (stdout, stderr) and outputs (out/<path>), named as
// the job's result names them.
func (s *Server) productPath(job, name string) string {
	return filepath.Join(s.quarantine(job), filepath.FromSlash(name))
}

// checkProduct checks one product against every dataset of the scenario
// and records the strictest decision; an error is a decision that could
// not be recorded.
func (s *Server) checkProduct(ctx context.Context, req metadata.EgressRequest, sc metadata.Scenario, name, path string) error {
	start := time.Now()
	p := metadata.EgressProduct{Name: name, Decision: "allow", Policy: s.policy.Version(), CheckedAt: time.Now().UTC()}
	if fi, err := os.Stat(path); err == nil {
		p.Size = fi.Size()
	}
	var checks []productCheck
	var inputs []*egress.Input
	var reasons []policy.Reason
	for _, d := range sc.Datasets {
		c := productCheck{Dataset: fmt.Sprintf("%s@%d", d.Name, d.Version)}
		v, err := s.meta.DatasetVersion(ctx, d.Name, d.Version)
		var g *egress.Gate
		if err == nil {
			g, err = s.gate(ctx, v)
		}
		var r *egress.Result
		if err == nil {
			r, err = g.Check(ctx, path)
		}
		if err != nil {
			// Fail closed: a check that could not run denies.
			c.Decision, c.Error = "deny", s.scrub(err.Error())
			c.Reasons = []policy.Reason{{Code: "check_failed", Message: "the gate could not check the product against " + c.Dataset}}
		} else {
			r.Input.Product.Path = name // no host path in a stored document
			c.Decision, c.Findings, c.Reasons, c.Timing = r.Decision.Decision, r.Findings, r.Decision.Reasons, &r.Timing
			inputs = append(inputs, r.Input)
			p.SHA256, p.Approvals = r.Product.SHA256, max(p.Approvals, r.Decision.Approvals)
		}
		if decisionRank[c.Decision] > decisionRank[p.Decision] {
			p.Decision = c.Decision
		}
		reasons = append(reasons, c.Reasons...)
		checks = append(checks, c)
	}
	if len(checks) == 0 { // nothing to check against: nothing is allowed
		p.Decision = "deny"
		reasons = []policy.Reason{{Code: "check_failed", Message: "the scenario names no dataset to check the product against"}}
	}
	if p.Decision == "allow" {
		p.Approvals = 0
	}
	p.Reasons, _ = json.Marshal(reasons)
	p.Findings, _ = json.Marshal(checks)
	p.Input, _ = json.Marshal(inputs)
	s.metrics.gateLatency.Observe(time.Since(start).Seconds())
	return s.meta.AddEgressProduct(ctx, req.ID, p)
}

type egressListBody struct {
	Body struct {
		Requests []metadata.EgressRequest `json:"requests"`
	}
}

type egressBody struct {
	Body metadata.EgressRequest
}

type justifyInput struct {
	ID   string `path:"id"`
	Body struct {
		Text string `json:"text" minLength:"1" maxLength:"4000" doc:"Why the products should leave: it is shown to the reviewers"`
	}
}

// visibleEgress reads a request the caller may see: another tenant's is
// 404.
func (s *Server) visibleEgress(ctx context.Context, id string) (metadata.EgressRequest, error) {
	r, err := s.meta.GetEgressRequest(ctx, id)
	if err == nil && !seesTenant(ctx, r.TenantID) {
		err = fmt.Errorf("egress request %s: %w", id, metadata.ErrNotFound)
	}
	return r, err
}

// actOnEgress does what a scientist of the request's tenant may do to it
// (another tenant's is 404, another role 403) and answers with the request
// as it is then.
func (s *Server) actOnEgress(ctx context.Context, id string, act func(id string) error) (*egressBody, error) {
	r, err := s.visibleEgress(ctx, id)
	if err == nil {
		err = require(ctx, metadata.RoleScientist)
	}
	if err == nil {
		err = act(r.ID)
	}
	if err == nil {
		r, err = s.meta.GetEgressRequest(ctx, r.ID)
	}
	if err != nil {
		return nil, apiError(err)
	}
	return &egressBody{Body: r}, nil
}

// registerEgress adds the egress requests: the platform roles see every
// one, a tenant's scientists their own; each product shows the gate's
// decision, reasons and findings (they hold no data value), never its
// content.
func (s *Server) registerEgress(api huma.API) {
	huma.Register(api, operation("list-egress", http.MethodGet, "/api/v1/egress", "The egress requests you may see, the oldest first"),
		func(ctx context.Context, _ *struct{}) (*egressListBody, error) {
			rs, err := s.meta.ListEgressRequests(ctx, visibleTenant(ctx))
			if err != nil {
				return nil, apiError(err)
			}
			out := &egressListBody{}
			out.Body.Requests = rs
			return out, nil
		})
	huma.Register(api, operation("withdraw-egress", http.MethodPost, "/api/v1/egress/{id}/withdraw", "Take an egress request back (a scientist of its tenant): nothing of it leaves", 403, 404, 409),
		func(ctx context.Context, in *idPath) (*egressBody, error) {
			return s.actOnEgress(ctx, in.ID, func(id string) error { return s.meta.WithdrawEgress(ctx, id) })
		})
	huma.Register(api, operation("justify-egress", http.MethodPost, "/api/v1/egress/{id}/justify", "Tell the reviewers why the products should leave (a scientist of its tenant)", 400, 403, 404, 409),
		func(ctx context.Context, in *justifyInput) (*egressBody, error) {
			return s.actOnEgress(ctx, in.ID, func(id string) error { return s.meta.JustifyEgress(ctx, id, in.Body.Text) })
		})
	huma.Register(api, operation("get-egress", http.MethodGet, "/api/v1/egress/{id}", "An egress request: each product's decision, reasons and findings", 404),
		func(ctx context.Context, in *idPath) (*egressBody, error) {
			r, err := s.visibleEgress(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &egressBody{Body: r}, nil
		})
}
