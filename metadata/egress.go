package metadata

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Egress request states.
const (
	EgressChecking  = "checking"  // the gate is checking its products
	EgressDecided   = "decided"   // every product has the gate's decision
	EgressWithdrawn = "withdrawn" // its scientist took it back: nothing of it leaves
)

// EgressRequest is what a finished prod job asks to take out: each of its
// outputs and its logs is a product with the gate's decision.
type EgressRequest struct {
	ID         string `json:"id"`
	JobID      string `json:"job_id"`
	TenantID   string `json:"tenant_id"`
	ScenarioID string `json:"scenario_id"`
	State      string `json:"state"`
	// Justification is the scientist's word to the reviewers.
	Justification string          `json:"justification,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	Products      []EgressProduct `json:"products"`
}

// EgressProduct is one product and the gate's decision on it. Findings and
// reasons name columns and counts, never data values; Input is the policy
// input document the decision was taken on (for replay), kept from users.
type EgressProduct struct {
	Name      string          `json:"name"` // stdout, stderr, or out/<path>
	Size      int64           `json:"size"`
	SHA256    string          `json:"sha256"`
	Decision  string          `json:"decision"` // allow | review | deny
	Approvals int             `json:"approvals"`
	Policy    string          `json:"policy"`
	Reasons   json.RawMessage `json:"reasons"`
	Findings  json.RawMessage `json:"findings"`
	Input     json.RawMessage `json:"-"`
	CheckedAt time.Time       `json:"checked_at"`
}

// CreateEgressRequest records a job's egress request, checking; a job has
// one (ErrConflict for a second).
func (s *SQLite) CreateEgressRequest(ctx context.Context, r EgressRequest) (EgressRequest, error) {
	r.ID, r.State = newID("egr"), EgressChecking
	r.CreatedAt = fromMicros(now())
	r.UpdatedAt = r.CreatedAt
	_, err := s.db.ExecContext(ctx, `INSERT INTO egress_requests (id, job_id, tenant_id, scenario_id, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.JobID, r.TenantID, r.ScenarioID, r.State, r.CreatedAt.UnixMicro(), r.UpdatedAt.UnixMicro())
	return r, conflict(err, "the egress request of job "+r.JobID)
}

// AddEgressProduct records the gate's decision on one product of a
// request (again after a crash: the later decision replaces it).
func (s *SQLite) AddEgressProduct(ctx context.Context, requestID string, p EgressProduct) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO egress_products (request_id, name, size, sha256, decision, approvals, policy, reasons, findings, input, checked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		requestID, p.Name, p.Size, p.SHA256, p.Decision, p.Approvals, p.Policy, string(p.Reasons), string(p.Findings), string(p.Input), p.CheckedAt.UnixMicro())
	return err
}

// SetEgressState moves a request to a state (a withdrawn one stays so).
func (s *SQLite) SetEgressState(ctx context.Context, id, state string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE egress_requests SET state = ?, updated_at = ? WHERE id = ? AND state != ?`, state, now(), id, EgressWithdrawn)
	return err
}

const egressColumns = `id, job_id, tenant_id, scenario_id, state, created_at, updated_at, justification`

func scanEgress(sc scanner) (EgressRequest, error) {
	var r EgressRequest
	var created, updated int64
	var justification sql.NullString
	err := sc.Scan(&r.ID, &r.JobID, &r.TenantID, &r.ScenarioID, &r.State, &created, &updated, &justification)
	r.CreatedAt, r.UpdatedAt, r.Justification = fromMicros(created), fromMicros(updated), justification.String
	return r, err
}

// WithdrawEgress takes a request back; one already withdrawn is
// ErrConflict.
func (s *SQLite) WithdrawEgress(ctx context.Context, id string) error {
	return s.updateOne(ctx, "egress_requests", "egress request", id, fmt.Errorf("egress request %s is withdrawn already: %w", id, ErrConflict),
		`UPDATE egress_requests SET state = ?, updated_at = ? WHERE id = ? AND state != ?`, EgressWithdrawn, now(), id, EgressWithdrawn)
}

// JustifyEgress sets a request's justification for the reviewers.
func (s *SQLite) JustifyEgress(ctx context.Context, id, text string) error {
	return s.updateOne(ctx, "egress_requests", "egress request", id, fmt.Errorf("egress request %s is withdrawn: %w", id, ErrConflict),
		`UPDATE egress_requests SET justification = ?, updated_at = ? WHERE id = ? AND state != ?`, text, now(), id, EgressWithdrawn)
}

// GetEgressRequest reads a request with its products.
func (s *SQLite) GetEgressRequest(ctx context.Context, id string) (EgressRequest, error) {
	r, err := scanEgress(s.db.QueryRowContext(ctx, `SELECT `+egressColumns+` FROM egress_requests WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("egress request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, err
	}
	r.Products, err = queryAll(ctx, s.db, func(sc scanner) (EgressProduct, error) {
		var p EgressProduct
		var reasons, findings, input string
		var checked int64
		err := sc.Scan(&p.Name, &p.Size, &p.SHA256, &p.Decision, &p.Approvals, &p.Policy, &reasons, &findings, &input, &checked)
		p.Reasons, p.Findings, p.Input, p.CheckedAt = json.RawMessage(reasons), json.RawMessage(findings), json.RawMessage(input), fromMicros(checked)
		return p, err
	}, `SELECT name, size, sha256, decision, approvals, policy, reasons, findings, input, checked_at FROM egress_products WHERE request_id = ? ORDER BY name`, id)
	return r, err
}

// EgressRequestOfJob reads the request of a job.
func (s *SQLite) EgressRequestOfJob(ctx context.Context, jobID string) (EgressRequest, error) {
	r, err := scanEgress(s.db.QueryRowContext(ctx, `SELECT `+egressColumns+` FROM egress_requests WHERE job_id = ?`, jobID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("the egress request of job %s: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return r, err
	}
	return s.GetEgressRequest(ctx, r.ID)
}

// ListEgressRequests lists a tenant's requests (every one for ""), the
// oldest first, without their products.
func (s *SQLite) ListEgressRequests(ctx context.Context, tenantID string) ([]EgressRequest, error) {
	if tenantID == "" {
		return queryAll(ctx, s.db, scanEgress, `SELECT `+egressColumns+` FROM egress_requests ORDER BY created_at, id`)
	}
	return queryAll(ctx, s.db, scanEgress, `SELECT `+egressColumns+` FROM egress_requests WHERE tenant_id = ? ORDER BY created_at, id`, tenantID)
}

// ProdJobsWithoutEgress lists the prod jobs that ended done and have no
// egress request, or one still checking: what a crash left to check.
func (s *SQLite) ProdJobsWithoutEgress(ctx context.Context) ([]Job, error) {
	return queryAll(ctx, s.db, scanJob, `SELECT `+jobColumns+` FROM jobs WHERE kind = 'prod' AND state = 'done'
		AND id NOT IN (SELECT job_id FROM egress_requests WHERE state IN (?, ?)) ORDER BY created_at`, EgressDecided, EgressWithdrawn)
}
