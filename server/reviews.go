package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/metadata"
)

// ReviewItem is one product the policy sent to people, with what a
// reviewer weighs: the gate's decision, reasons and findings, the
// scientist's justification, the job's provenance and the scenario.
type ReviewItem struct {
	Request       string                     `json:"request"`
	Job           string                     `json:"job"`
	TenantID      string                     `json:"tenant_id"`
	Justification string                     `json:"justification,omitempty"`
	Product       metadata.EgressProduct     `json:"product"`
	Image         string                     `json:"image"`
	ImageDigest   string                     `json:"image_digest"`
	CodeDigest    string                     `json:"code_digest"`
	Scenario      string                     `json:"scenario"`
	Purpose       string                     `json:"purpose"`
	Datasets      []metadata.ScenarioDataset `json:"datasets"`
}

type reviewsBody struct {
	Body struct {
		Items []ReviewItem `json:"items"`
	}
}

type contentInput struct {
	ID      string `path:"id"`
	Product string `query:"product" required:"true" doc:"The product's name in the request (stdout, stderr, out/<path>)"`
}

// registerReviews adds the reviewers' side (read only for now): the queue
// of products the policy sent to review, and their content. Decisions on
// them come with the rest of review (issue 9).
func (s *Server) registerReviews(api huma.API) {
	huma.Register(api, operation("list-reviews", http.MethodGet, "/api/v1/reviews", "The products waiting for review, with their evidence (reviewer)", 403),
		func(ctx context.Context, _ *struct{}) (*reviewsBody, error) {
			if err := require(ctx, metadata.RoleReviewer); err != nil {
				return nil, apiError(err)
			}
			items, err := s.reviewQueue(ctx)
			if err != nil {
				return nil, apiError(err)
			}
			out := &reviewsBody{}
			out.Body.Items = items
			return out, nil
		})
	huma.Register(api, operation("review-content", http.MethodGet, "/api/v1/reviews/{id}/content",
		"The content of a product waiting for review (reviewer); no other product is shown", 403, 404),
		func(ctx context.Context, in *contentInput) (*huma.StreamResponse, error) {
			if err := require(ctx, metadata.RoleReviewer); err != nil {
				return nil, apiError(err)
			}
			path, err := s.reviewContent(ctx, in.ID, in.Product)
			if err != nil {
				return nil, apiError(err)
			}
			return attachment(path)
		})
}

// reviewQueue lists the products of decided requests whose decision is
// review.
func (s *Server) reviewQueue(ctx context.Context) ([]ReviewItem, error) {
	reqs, err := s.meta.ListEgressRequests(ctx, "")
	if err != nil {
		return nil, err
	}
	items := []ReviewItem{}
	for _, r := range reqs {
		if r.State != metadata.EgressDecided {
			continue
		}
		full, err := s.meta.GetEgressRequest(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		j, err := s.meta.GetJob(ctx, r.JobID)
		if err != nil {
			return nil, err
		}
		sc, err := s.meta.GetScenario(ctx, r.ScenarioID)
		if err != nil {
			return nil, err
		}
		for _, p := range full.Products {
			if p.Decision != "review" {
				continue
			}
			items = append(items, ReviewItem{Request: r.ID, Job: j.ID, TenantID: r.TenantID, Justification: r.Justification, Product: p,
				Image: j.Image, ImageDigest: j.ImageDigest, CodeDigest: j.CodeDigest, Scenario: sc.ID, Purpose: sc.Purpose, Datasets: sc.Datasets})
		}
	}
	return items, nil
}

// reviewContent is the quarantined file of a product waiting for review;
// any other product of the request (allowed, denied, or of a withdrawn
// request) is refused.
func (s *Server) reviewContent(ctx context.Context, id, name string) (string, error) {
	r, err := s.meta.GetEgressRequest(ctx, id)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(r.Products, func(p metadata.EgressProduct) bool { return p.Name == name })
	if i < 0 {
		return "", fmt.Errorf("egress request %s has no product %q: %w", id, name, metadata.ErrNotFound)
	}
	if r.State != metadata.EgressDecided || r.Products[i].Decision != "review" {
		return "", fmt.Errorf("product %s of %s is not waiting for review (%s, request %s): %w", name, id, r.Products[i].Decision, r.State, metadata.ErrForbidden)
	}
	return s.productPath(r.JobID, name), nil // a name the request recorded
}
