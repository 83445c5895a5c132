package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/metadata"
)

type auditInput struct {
	Since time.Time `query:"since" doc:"Only records at or after this time (RFC 3339)"`
	Limit int       `query:"limit" minimum:"1" maximum:"10000" default:"1000" doc:"At most this many records, the oldest first"`
}

type auditBody struct {
	Body struct {
		Records []audit.Record `json:"records"`
	}
}

type verifyBody struct {
	Body struct {
		Intact  bool   `json:"intact"`
		Records int64  `json:"records" doc:"Records checked"`
		Problem string `json:"problem,omitempty" doc:"The first record at fault, when not intact"`
	}
}

// registerAudit adds the trail's operations: auditors, the security role
// and administrators read and verify it; nobody changes it (there is no
// operation that could).
func (s *Server) registerAudit(api huma.API) {
	readers := []metadata.Role{metadata.RoleAuditor, metadata.RoleSecurity, metadata.RoleAdmin}
	huma.Register(api, operation("list-audit", http.MethodGet, "/api/v1/audit",
		"Read the audit trail (auditor, security, admin)", 403),
		func(ctx context.Context, in *auditInput) (*auditBody, error) {
			if err := require(ctx, readers...); err != nil {
				return nil, apiError(err)
			}
			recs, err := s.audit.Records(ctx, in.Since, in.Limit)
			if err != nil {
				return nil, apiError(err)
			}
			out := &auditBody{}
			out.Body.Records = append([]audit.Record{}, recs...)
			return out, nil
		})
	huma.Register(api, operation("verify-audit", http.MethodGet, "/api/v1/audit/verify",
		"Verify the audit trail against the server's key (auditor, security, admin)", 403),
		func(ctx context.Context, _ *struct{}) (*verifyBody, error) {
			if err := require(ctx, readers...); err != nil {
				return nil, apiError(err)
			}
			// The head is signed first, so that the records up to now are
			// covered.
			if err := s.audit.Checkpoint(ctx); err != nil {
				return nil, apiError(err)
			}
			n, err := s.audit.Verify(ctx, s.pub)
			out := &verifyBody{}
			out.Body.Records = n
			var p *audit.Problem
			switch {
			case errors.As(err, &p):
				out.Body.Problem = p.Error()
			case err != nil:
				return nil, apiError(err)
			default:
				out.Body.Intact = true
			}
			return out, nil
		})
}
