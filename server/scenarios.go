package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/storage"
)

type applyInput struct {
	Body struct {
		Name     string                     `json:"name" example:"income-by-city"`
		Purpose  string                     `json:"purpose" doc:"What the data is for, as the authorisation states it"`
		Datasets []metadata.ScenarioDataset `json:"datasets" doc:"Each dataset (version 0: the latest) and the exact columns needed"`
		Products []string                   `json:"products,omitempty" doc:"Expected product types: table, report, model, …"`
		Until    time.Time                  `json:"until" doc:"End of the period: at most three years ahead"`
	}
}

type scenarioBody struct {
	Body metadata.Scenario
}

type scenariosBody struct {
	Body struct {
		Scenarios []metadata.Scenario `json:"scenarios"`
	}
}

type decideInput struct {
	ID   string `path:"id"`
	Body *struct {
		Comment string `json:"comment,omitempty" doc:"Why: it is kept with the decision"`
	} `required:"false"`
}

// comment is the decision's comment, if it has a body.
func (in *decideInput) comment() string {
	if in.Body == nil {
		return ""
	}
	return in.Body.Comment
}

// registerScenarios adds the scenario operations: a tenant's scientist
// applies, an administrator decides. Another tenant's scenario is 404.
func (s *Server) registerScenarios(api huma.API) {
	huma.Register(api, operation("apply-scenario", http.MethodPost, "/api/v1/scenarios", "Apply for a scenario (scientist)", 400, 403, 409),
		func(ctx context.Context, in *applyInput) (*scenarioBody, error) {
			if err := require(ctx, metadata.RoleScientist); err != nil {
				return nil, apiError(err)
			}
			sc, err := s.apply(ctx, in)
			if err != nil {
				return nil, apiError(err)
			}
			return &scenarioBody{Body: sc}, nil
		})
	huma.Register(api, operation("list-scenarios", http.MethodGet, "/api/v1/scenarios", "The scenarios you may see"),
		func(ctx context.Context, _ *struct{}) (*scenariosBody, error) {
			scs, err := s.meta.ListScenarios(ctx, visibleTenant(ctx))
			if err != nil {
				return nil, apiError(err)
			}
			now := time.Now()
			for i := range scs {
				scs[i].State = scs[i].Effective(now)
			}
			out := &scenariosBody{}
			out.Body.Scenarios = scs // never nil: an empty list is []
			return out, nil
		})
	huma.Register(api, operation("get-scenario", http.MethodGet, "/api/v1/scenarios/{id}", "A scenario", 404),
		func(ctx context.Context, in *idPath) (*scenarioBody, error) {
			sc, err := s.visibleScenario(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &scenarioBody{Body: sc}, nil
		})
	for _, d := range metadata.ScenarioDecisions {
		huma.Register(api, operation(d.Verb+"-scenario", http.MethodPost, "/api/v1/scenarios/{id}/"+d.Verb, decisionSummary[d.Verb], 403, 404, 409),
			func(ctx context.Context, in *decideInput) (*scenarioBody, error) {
				if err := require(ctx, metadata.RoleAdmin); err != nil {
					return nil, apiError(err)
				}
				sc, err := s.decide(ctx, in.ID, d, in.comment())
				if err != nil {
					return nil, apiError(err)
				}
				return &scenarioBody{Body: sc}, nil
			})
	}
}

var decisionSummary = map[string]string{
	"approve":   "Approve a pending scenario: its keys are made (admin)",
	"reject":    "Reject a pending scenario (admin)",
	"suspend":   "Suspend an active scenario for rectification: access closes at once (admin)",
	"resume":    "Resume a suspended scenario (admin)",
	"terminate": "Terminate a scenario: its keys and views are destroyed (admin)",
}

// apply checks an application against the registered datasets — every
// column named exists in the version asked for, the period is at most
// three years — and records it pending.
func (s *Server) apply(ctx context.Context, in *applyInput) (metadata.Scenario, error) {
	b := in.Body
	now := time.Now()
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, metadata.ErrInvalidArgument)...)
	}
	switch {
	case strings.TrimSpace(b.Purpose) == "":
		return metadata.Scenario{}, bad("purpose: say what the data is for")
	case !b.Until.After(now):
		return metadata.Scenario{}, bad("until: the period must end in the future")
	case b.Until.Sub(now) > metadata.MaxScenarioPeriod:
		return metadata.Scenario{}, bad("until: an authorisation lasts at most three years")
	}
	if err := s.checkDatasets(ctx, b.Datasets); err != nil {
		return metadata.Scenario{}, err
	}
	u := principal(ctx)
	return s.meta.CreateScenario(ctx, metadata.Scenario{TenantID: u.TenantID, Name: b.Name, Purpose: b.Purpose, Datasets: b.Datasets,
		Products: append([]string{}, b.Products...), Until: b.Until.UTC(), Applicant: u.ID})
}

// checkDatasets checks a data list against the registered datasets: each
// names the exact columns it needs, which exist in the version named (the
// latest when none is: the version is filled in).
func (s *Server) checkDatasets(ctx context.Context, ds []metadata.ScenarioDataset) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, metadata.ErrInvalidArgument)...)
	}
	if len(ds) == 0 {
		return bad("datasets: name at least one, with its columns")
	}
	named := map[string]bool{}
	for i, d := range ds {
		if named[d.Name] {
			return bad("dataset %s named twice", d.Name)
		}
		named[d.Name] = true
		var v metadata.DatasetVersion
		var err error
		if d.Version == 0 {
			var vs []metadata.DatasetVersion
			if vs, err = s.meta.DatasetVersions(ctx, d.Name); err == nil {
				v = vs[len(vs)-1]
			}
		} else {
			v, err = s.meta.DatasetVersion(ctx, d.Name, d.Version)
		}
		if err != nil {
			return err
		}
		ds[i].Version = v.Version
		if len(d.Columns) == 0 {
			return bad("dataset %s: name the columns needed (minimum necessary)", d.Name)
		}
		have := map[string]bool{}
		for _, c := range v.Columns {
			have[c.Name] = true
		}
		seen := map[string]bool{}
		for _, c := range d.Columns {
			if !have[c] {
				return bad("dataset %s version %d has no column %q", d.Name, v.Version, c)
			}
			if seen[c] {
				return bad("dataset %s: column %q named twice", d.Name, c)
			}
			seen[c] = true
		}
	}
	return nil
}

// decide takes an administrator's decision. Approval makes the scenario's
// keys: its pseudonym key (pseudonyms join within a scenario, never across)
// and the key that seals its cached views, both wrapped by the master key.
// Termination erases both — what was sealed under them can no longer be
// opened by anyone — and the trail records what was destroyed.
func (s *Server) decide(ctx context.Context, id string, d metadata.ScenarioDecision, comment string) (metadata.Scenario, error) {
	keys := func() ([]byte, []byte, error) {
		pseudo, err := s.master.Wrap(storage.NewDataKey())
		if err != nil {
			return nil, nil, err
		}
		view, err := s.master.Wrap(storage.NewDataKey())
		return pseudo, view, err
	}
	destroyed := ""
	if d.To == metadata.ScenarioTerminated {
		destroyed = "the scenario's pseudonym key and view key (wrapped by the master key), and its views sealed under it"
	}
	sc, err := s.meta.DecideScenario(ctx, id, d, principal(ctx).ID, comment, keys, destroyed)
	if err != nil {
		return sc, err
	}
	if s.sched != nil && (d.To == metadata.ScenarioSuspended || d.To == metadata.ScenarioTerminated) {
		// R8: access closes at once — running jobs stop, queued ones will not start.
		s.sched.cancelScenario(id, fmt.Errorf("scenario %s was %s", id, d.Verb+"d"))
		s.sched.wake()
	}
	if d.To == metadata.ScenarioTerminated {
		s.dropViews(ctx, sc)
		if err := s.appendAudit(ctx, audit.Record{Actor: principal(ctx).ID, Role: string(principal(ctx).Role), Action: "destroy-scenario-keys",
			Resource: id, Result: "ok"}); err != nil {
			s.log.Error("audit: the destruction was not recorded", "scenario", id, "err", err)
		}
	}
	s.log.Info("scenario decided", "scenario", id, "decision", d.Verb)
	return sc, nil
}

// visibleScenario reads a scenario the caller may see, with its state as
// it stands now.
func (s *Server) visibleScenario(ctx context.Context, id string) (metadata.Scenario, error) {
	sc, err := s.meta.GetScenario(ctx, id)
	if err != nil {
		return sc, err
	}
	if !seesTenant(ctx, sc.TenantID) {
		return metadata.Scenario{}, fmt.Errorf("scenario %s: %w", id, metadata.ErrNotFound)
	}
	sc.State = sc.Effective(time.Now())
	return sc, nil
}
