package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/metadata"
)

type amendInput struct {
	ID   string `path:"id"`
	Body struct {
		Datasets []metadata.ScenarioDataset `json:"datasets" doc:"The whole new data list: each dataset (version 0: the latest) and the exact columns needed"`
	}
}

type amendmentBody struct {
	Body metadata.Amendment
}

type amendmentsBody struct {
	Body struct {
		Amendments []metadata.Amendment `json:"amendments"`
	}
}

type decideAmendmentInput struct {
	ID      string `path:"id"`
	Version int    `path:"version"`
	Body    *struct {
		Comment string `json:"comment,omitempty" doc:"Why: it is kept with the decision"`
	} `required:"false"`
}

// registerAmendments adds the amendment of a scenario's data list: a new
// version of the list, approved again by an administrator before it takes
// effect (一场景一清单一审核); until then the scenario keeps the list it has.
func (s *Server) registerAmendments(api huma.API) {
	huma.Register(api, operation("amend-scenario", http.MethodPost, "/api/v1/scenarios/{id}/amendments",
		"Propose a new data list for a scenario (scientist of its tenant): a new version, approved again", 400, 403, 404, 409),
		func(ctx context.Context, in *amendInput) (*amendmentBody, error) {
			if err := require(ctx, metadata.RoleScientist); err != nil {
				return nil, apiError(err)
			}
			sc, err := s.visibleScenario(ctx, in.ID)
			if err == nil {
				err = s.checkDatasets(ctx, in.Body.Datasets)
			}
			if err != nil {
				return nil, apiError(err)
			}
			a, err := s.meta.ProposeAmendment(ctx, sc.ID, in.Body.Datasets, principal(ctx).ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &amendmentBody{Body: a}, nil
		})
	huma.Register(api, operation("list-amendments", http.MethodGet, "/api/v1/scenarios/{id}/amendments", "A scenario's amendments", 404),
		func(ctx context.Context, in *idPath) (*amendmentsBody, error) {
			sc, err := s.visibleScenario(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			as, err := s.meta.ListAmendments(ctx, sc.ID)
			if err != nil {
				return nil, apiError(err)
			}
			out := &amendmentsBody{}
			out.Body.Amendments = as
			return out, nil
		})
	for _, verb := range []string{"approve", "reject"} {
		huma.Register(api, operation(verb+"-amendment", http.MethodPost, "/api/v1/scenarios/{id}/amendments/{version}/"+verb,
			map[string]string{"approve": "Approve an amendment: the scenario takes its data list (admin)", "reject": "Reject an amendment (admin)"}[verb], 403, 404, 409),
			func(ctx context.Context, in *decideAmendmentInput) (*scenarioBody, error) {
				if err := require(ctx, metadata.RoleAdmin); err != nil {
					return nil, apiError(err)
				}
				comment := ""
				if in.Body != nil {
					comment = in.Body.Comment
				}
				old, err := s.meta.GetScenario(ctx, in.ID)
				if err != nil {
					return nil, apiError(err)
				}
				sc, _, err := s.meta.DecideAmendment(ctx, in.ID, in.Version, verb == "approve", principal(ctx).ID, comment)
				if err != nil {
					return nil, apiError(err)
				}
				if verb == "approve" {
					// The cached views hold the old columns: they go, and are made
					// again from the new list when a job needs them.
					s.dropViews(ctx, old)
					if err := s.appendAudit(ctx, audit.Record{Actor: principal(ctx).ID, Role: string(principal(ctx).Role), Action: "scenario-version",
						Resource: fmt.Sprintf("%s@%d", sc.ID, sc.Version), Result: "ok"}); err != nil {
						s.log.Error("audit: the new version was not recorded", "scenario", sc.ID, "err", err)
					}
				}
				sc.State = sc.Effective(time.Now())
				return &scenarioBody{Body: sc}, nil
			})
	}
}
