package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/egress"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/sandbox"
	"github.com/sluicehq/sluice/storage"
)

// indexes keeps the gate's index of each dataset version, built once from
// its sealed raw source (decrypted as it is read) and reused by every
// check: a version is immutable. At most maxIndexes are kept; the oldest
// built goes first.
type indexes struct {
	mu    sync.Mutex
	byKey map[string]*indexEntry
	order []string
}

type indexEntry struct {
	once sync.Once
	ix   *egress.Index
	err  error
}

const maxIndexes = 4

func (s *Server) index(ctx context.Context, v metadata.DatasetVersion) (*egress.Index, error) {
	key := fmt.Sprintf("%s@%d", v.Name, v.Version)
	s.idx.mu.Lock()
	if s.idx.byKey == nil {
		s.idx.byKey = map[string]*indexEntry{}
	}
	e := s.idx.byKey[key]
	if e == nil {
		e = &indexEntry{}
		s.idx.byKey[key] = e
		s.idx.order = append(s.idx.order, key)
		if len(s.idx.order) > maxIndexes {
			delete(s.idx.byKey, s.idx.order[0])
			s.idx.order = s.idx.order[1:]
		}
	}
	s.idx.mu.Unlock()
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
		open := storage.Opener(context.WithoutCancel(ctx), s.store, key)
		read := dataset.Options{Open: func(n string) (dataset.File, int64, error) { o, size, err := open(n); return o, size, err }}
		e.ix, e.err = egress.BuildIndex(ctx, v.Object, classes, read)
	})
	if e.err != nil {
		s.idx.mu.Lock()
		if s.idx.byKey[key] == e {
			delete(s.idx.byKey, key) // a failed build is tried again next time
		}
		s.idx.mu.Unlock()
	}
	return e.ix, e.err
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
	if err != nil {
		if err := s.appendAudit(ctx, audit.Record{Actor: "system", Tenant: j.TenantID, Action: "egress-request", Resource: j.ID, Result: "attempt"}); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if req, err = s.meta.CreateEgressRequest(ctx, metadata.EgressRequest{JobID: j.ID, TenantID: j.TenantID, ScenarioID: j.ScenarioID}); err != nil {
			return err
		}
	}
	if req.State == metadata.EgressDecided || req.State == metadata.EgressWithdrawn {
		return nil
	}
	sc, err := s.meta.GetScenario(ctx, j.ScenarioID)
	if err != nil {
		return err
	}
	full, err := s.meta.GetJob(ctx, j.ID)
	if err != nil {
		return err
	}
	var res *sandbox.Result
	if rec, err := decodeRecord(full); err == nil {
		res = rec.Result
	}
	if res == nil {
		return fmt.Errorf("job %s has no result", j.ID)
	}
	q := s.quarantine(j.ID)
	products := []struct{ name, path string }{{"stdout", filepath.Join(q, res.Stdout)}, {"stderr", filepath.Join(q, res.Stderr)}}
	for _, o := range res.Outputs {
		products = append(products, struct{ name, path string }{"out/" + o.Path, filepath.Join(q, "out", filepath.FromSlash(o.Path))})
	}
	for _, p := range products {
		s.checkProduct(ctx, req, sc, p.name, p.path)
	}
	if err := s.appendAudit(ctx, audit.Record{Actor: "system", Tenant: j.TenantID, Action: "egress-decided", Resource: req.ID, Result: "ok"}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return s.meta.SetEgressState(ctx, req.ID, metadata.EgressDecided)
}

// checkProduct checks one product against every dataset of the scenario
// and records the strictest decision.
func (s *Server) checkProduct(ctx context.Context, req metadata.EgressRequest, sc metadata.Scenario, name, path string) {
	start := time.Now()
	p := metadata.EgressProduct{Name: name, Decision: "allow", Policy: s.policy.Version(), CheckedAt: time.Now().UTC()}
	if fi, err := os.Stat(path); err == nil {
		p.Size = fi.Size()
	}
	var checks []productCheck
	var reasons []policy.Reason
	for _, d := range sc.Datasets {
		c := productCheck{Dataset: fmt.Sprintf("%s@%d", d.Name, d.Version)}
		v, err := s.meta.DatasetVersion(ctx, d.Name, d.Version)
		var ix *egress.Index
		if err == nil {
			ix, err = s.index(ctx, v)
		}
		var r *egress.Result
		if err == nil {
			r, err = egress.NewGate(ix, s.policy).Check(ctx, path)
		}
		if err != nil {
			// Fail closed: a check that could not run denies.
			c.Decision, c.Error = "deny", s.scrub(err.Error())
			c.Reasons = []policy.Reason{{Code: "check_failed", Message: "the gate could not check the product against " + c.Dataset}}
		} else {
			r.Input.Product.Path = name // no host path in a stored document
			c.Decision, c.Findings, c.Reasons, c.Input, c.Timing = r.Decision.Decision, r.Findings, r.Decision.Reasons, r.Input, &r.Timing
			p.SHA256, p.Approvals = r.Product.SHA256, max(p.Approvals, r.Decision.Approvals)
		}
		if decisionRank[c.Decision] > decisionRank[p.Decision] {
			p.Decision = c.Decision
		}
		reasons = append(reasons, c.Reasons...)
		checks = append(checks, c)
	}
	if p.Decision == "allow" {
		p.Approvals = 0
	}
	inputs := make([]*egress.Input, len(checks))
	for i := range checks {
		inputs[i], checks[i].Input = checks[i].Input, nil
	}
	p.Reasons, _ = json.Marshal(reasons)
	p.Findings, _ = json.Marshal(checks)
	p.Input, _ = json.Marshal(inputs)
	s.metrics.gateLatency.Observe(time.Since(start).Seconds())
	if err := s.meta.AddEgressProduct(ctx, req.ID, p); err != nil {
		s.log.Error("recording a product's decision", "request", req.ID, "product", name, "err", err)
	}
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

// ownEgress is a request the caller may act on as its scientist: their
// tenant's (another tenant's is 404), and only a scientist acts (403).
func (s *Server) ownEgress(ctx context.Context, id string) (metadata.EgressRequest, error) {
	r, err := s.meta.GetEgressRequest(ctx, id)
	if err == nil && !seesTenant(ctx, r.TenantID) {
		err = fmt.Errorf("egress request %s: %w", id, metadata.ErrNotFound)
	}
	if err == nil {
		err = require(ctx, metadata.RoleScientist)
	}
	return r, err
}

// registerEgress adds the egress requests: the platform roles see every
// one, a tenant's scientists their own; each product shows the gate's
// decision, reasons and findings (they hold no data value), never its
// content.
func (s *Server) registerEgress(api huma.API) {
	huma.Register(api, operation("list-egress", http.MethodGet, "/api/v1/egress", "The egress requests you may see, the oldest first"),
		func(ctx context.Context, _ *struct{}) (*egressListBody, error) {
			tenant := ""
			if u := principal(ctx); !u.Role.Platform() {
				tenant = u.TenantID
			}
			rs, err := s.meta.ListEgressRequests(ctx, tenant)
			if err != nil {
				return nil, apiError(err)
			}
			out := &egressListBody{}
			out.Body.Requests = rs
			return out, nil
		})
	huma.Register(api, operation("withdraw-egress", http.MethodPost, "/api/v1/egress/{id}/withdraw", "Take an egress request back (a scientist of its tenant): nothing of it leaves", 403, 404, 409),
		func(ctx context.Context, in *idPath) (*egressBody, error) {
			r, err := s.ownEgress(ctx, in.ID)
			if err == nil {
				err = s.meta.WithdrawEgress(ctx, r.ID)
			}
			if err == nil {
				r, err = s.meta.GetEgressRequest(ctx, r.ID)
			}
			if err != nil {
				return nil, apiError(err)
			}
			return &egressBody{Body: r}, nil
		})
	huma.Register(api, operation("justify-egress", http.MethodPost, "/api/v1/egress/{id}/justify", "Tell the reviewers why the products should leave (a scientist of its tenant)", 400, 403, 404, 409),
		func(ctx context.Context, in *justifyInput) (*egressBody, error) {
			r, err := s.ownEgress(ctx, in.ID)
			if err == nil {
				err = s.meta.JustifyEgress(ctx, r.ID, in.Body.Text)
			}
			if err == nil {
				r, err = s.meta.GetEgressRequest(ctx, r.ID)
			}
			if err != nil {
				return nil, apiError(err)
			}
			return &egressBody{Body: r}, nil
		})
	huma.Register(api, operation("get-egress", http.MethodGet, "/api/v1/egress/{id}", "An egress request: each product's decision, reasons and findings", 404),
		func(ctx context.Context, in *idPath) (*egressBody, error) {
			r, err := s.meta.GetEgressRequest(ctx, in.ID)
			if err == nil && !seesTenant(ctx, r.TenantID) {
				err = fmt.Errorf("egress request %s: %w", in.ID, metadata.ErrNotFound)
			}
			if err != nil {
				return nil, apiError(err)
			}
			return &egressBody{Body: r}, nil
		})
}
