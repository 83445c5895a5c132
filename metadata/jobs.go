package metadata

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Job kinds (SPEC §3): a dev job reads a scenario's dev extract and its
// submitter reads what it wrote; a prod job reads the prod views and its
// outputs and logs go to quarantine, readable by nobody until released.
const (
	JobDev  = "dev"
	JobProd = "prod"
)

// Job is a job submitted under a scenario. Its state is the sandbox's
// (queued → preparing → running → finishing → done | failed); Record, the
// sandbox's execution record (JSON, no data values), is kept with it from
// the moment the scheduler hands the job to the sandbox.
type Job struct {
	ID          string          `json:"id"`
	TenantID    string          `json:"tenant_id"`
	ScenarioID  string          `json:"scenario_id"`
	Submitter   string          `json:"submitter"`
	Kind        string          `json:"kind"`
	Image       string          `json:"image"`
	ImageDigest string          `json:"image_digest"`
	CodeDigest  string          `json:"code_digest"`
	Command     []string        `json:"command"`
	Runtime     string          `json:"runtime"`
	Limits      json.RawMessage `json:"limits"` // the sandbox's limits, resolved
	State       string          `json:"state"`
	Reason      string          `json:"reason,omitempty"`
	ExitCode    *int            `json:"exit_code,omitempty"`
	Error       string          `json:"error,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Record      json.RawMessage `json:"-"`
}

// JobProgress is what the sandbox reports of a job at a transition.
type JobProgress struct {
	State    string
	Reason   string
	ExitCode *int
	Error    string
	Record   []byte
}

// JobFilter selects jobs; empty fields select all.
type JobFilter struct {
	TenantID   string
	ScenarioID string
	States     []string
	Unassigned bool // only jobs the scheduler has not handed to the sandbox
	Assigned   bool // only jobs it has
	// Records reads each job's sandbox record too (the scheduler needs
	// them; a listing does not, and decoding them is most of its cost).
	Records bool
}

// CodeBundle is a job's code as uploaded: a .tar.gz named by its sha256,
// belonging to the tenant that uploaded it.
type CodeBundle struct {
	Digest    string    `json:"digest"`
	TenantID  string    `json:"tenant_id"`
	Size      int64     `json:"size"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateJob records a submitted job, queued.
func (s *SQLite) CreateJob(ctx context.Context, j Job) (Job, error) {
	if j.ID == "" {
		j.ID = "job-" + strings.TrimPrefix(newID(""), "_")
	}
	j.State = "queued"
	j.CreatedAt = fromMicros(now())
	j.UpdatedAt = j.CreatedAt
	cmd, _ := json.Marshal(j.Command)
	if len(j.Limits) == 0 {
		j.Limits = json.RawMessage("{}")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, tenant_id, scenario_id, submitter, kind, image, image_digest, code_digest, command, runtime, limits, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.TenantID, j.ScenarioID, j.Submitter, j.Kind, j.Image, j.ImageDigest, j.CodeDigest, string(cmd), j.Runtime, string(j.Limits), j.State,
		j.CreatedAt.UnixMicro(), j.UpdatedAt.UnixMicro())
	if err != nil {
		return j, conflict(err, "job "+j.ID)
	}
	return j, nil
}

// jobFields are a job's columns but its record, which jobColumns adds.
const (
	jobFields  = `id, tenant_id, scenario_id, submitter, kind, image, image_digest, code_digest, command, runtime, limits, state, reason, exit_code, error, created_at, updated_at`
	jobColumns = jobFields + `, record`
)

func scanJob(sc scanner) (Job, error) {
	var j Job
	var cmd, limits string
	var reason, errMsg sql.NullString
	var exit sql.NullInt64
	var created, updated int64
	var record []byte
	if err := sc.Scan(&j.ID, &j.TenantID, &j.ScenarioID, &j.Submitter, &j.Kind, &j.Image, &j.ImageDigest, &j.CodeDigest, &cmd, &j.Runtime, &limits,
		&j.State, &reason, &exit, &errMsg, &created, &updated, &record); err != nil {
		return j, err
	}
	j.Reason, j.Error, j.Limits, j.Record = reason.String, errMsg.String, json.RawMessage(limits), record
	if exit.Valid {
		c := int(exit.Int64)
		j.ExitCode = &c
	}
	j.CreatedAt, j.UpdatedAt = fromMicros(created), fromMicros(updated)
	err := json.Unmarshal([]byte(cmd), &j.Command)
	return j, err
}

// GetJob reads a job.
func (s *SQLite) GetJob(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return j, err
}

// ListJobs lists the jobs a filter selects, the oldest first.
func (s *SQLite) ListJobs(ctx context.Context, f JobFilter) ([]Job, error) {
	var where []string
	var args []any
	if f.TenantID != "" {
		where, args = append(where, "tenant_id = ?"), append(args, f.TenantID)
	}
	if f.ScenarioID != "" {
		where, args = append(where, "scenario_id = ?"), append(args, f.ScenarioID)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if f.Unassigned {
		where = append(where, "record IS NULL")
	}
	if f.Assigned {
		where = append(where, "record IS NOT NULL")
	}
	cols := jobColumns
	if !f.Records {
		cols = jobFields + `, NULL`
	}
	query := `SELECT ` + cols + ` FROM jobs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	return queryAll(ctx, s.db, scanJob, query+` ORDER BY created_at, id`, args...)
}

// RecordJob stores what the sandbox reports of a job. A job already
// ended (done or failed) is not changed.
func (s *SQLite) RecordJob(ctx context.Context, id string, p JobProgress) error {
	var exit sql.NullInt64
	if p.ExitCode != nil {
		exit = sql.NullInt64{Int64: int64(*p.ExitCode), Valid: true}
	}
	return s.updateOne(ctx, "jobs", "job", id, fmt.Errorf("job %s has ended: %w", id, ErrConflict),
		`UPDATE jobs SET state = ?, reason = ?, exit_code = ?, error = ?, record = ?, updated_at = ?
		WHERE id = ? AND state NOT IN ('done', 'failed')`,
		p.State, nullString(p.Reason), exit, nullString(p.Error), p.Record, now(), id)
}

// EndUnassignedJob fails a job the scheduler has not handed to the sandbox
// yet (cancelled, or its scenario closed): ErrConflict when it has been.
func (s *SQLite) EndUnassignedJob(ctx context.Context, id, reason, msg string) error {
	return s.updateOne(ctx, "jobs", "job", id, fmt.Errorf("job %s has started: %w", id, ErrConflict),
		`UPDATE jobs SET state = 'failed', reason = ?, error = ?, updated_at = ?
		WHERE id = ? AND state = 'queued' AND record IS NULL`, reason, msg, now(), id)
}

// updateOne runs an UPDATE of the row id of table that holds only in some
// states. When it changes nothing, the row is missing (ErrNotFound) or in
// another state (conflict).
func (s *SQLite) updateOne(ctx context.Context, table, what, id string, conflict error, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var one int
	err = s.db.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s %s: %w", what, id, ErrNotFound)
	}
	if err != nil {
		return err
	}
	return conflict
}

// DevSucceeded lists the code digests that ran in dev under a scenario and
// exited 0 by themselves.
func (s *SQLite) DevSucceeded(ctx context.Context, scenarioID string) ([]string, error) {
	return queryAll(ctx, s.db, func(sc scanner) (string, error) {
		var d string
		err := sc.Scan(&d) // before d is read: Go does not order a return's operands
		return d, err
	}, `SELECT DISTINCT code_digest FROM jobs WHERE scenario_id = ? AND kind = 'dev' AND state = 'done' AND reason = 'exited' AND exit_code = 0 ORDER BY code_digest`, scenarioID)
}

// AddCodeBundle records an uploaded code bundle; the same bundle uploaded
// again by its tenant is no error.
func (s *SQLite) AddCodeBundle(ctx context.Context, b CodeBundle) (CodeBundle, error) {
	if have, err := s.GetCodeBundle(ctx, b.TenantID, b.Digest); err == nil {
		return have, nil
	}
	b.CreatedAt = fromMicros(now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO code_bundles (digest, tenant_id, size, created_by, created_at) VALUES (?, ?, ?, ?, ?)`,
		b.Digest, b.TenantID, b.Size, b.CreatedBy, b.CreatedAt.UnixMicro())
	return b, conflict(err, "code bundle "+b.Digest)
}

// GetCodeBundle reads a tenant's code bundle; another tenant's is
// ErrNotFound.
func (s *SQLite) GetCodeBundle(ctx context.Context, tenantID, digest string) (CodeBundle, error) {
	var b CodeBundle
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT digest, tenant_id, size, created_by, created_at FROM code_bundles WHERE tenant_id = ? AND digest = ?`,
		tenantID, digest).Scan(&b.Digest, &b.TenantID, &b.Size, &b.CreatedBy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("code bundle %s: %w", digest, ErrNotFound)
	}
	b.CreatedAt = fromMicros(created)
	return b, err
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CountJobs counts the jobs in each state.
func (s *SQLite) CountJobs(ctx context.Context) (map[string]int, error) {
	type row struct {
		state string
		n     int
	}
	rows, err := queryAll(ctx, s.db, func(sc scanner) (row, error) {
		var r row
		err := sc.Scan(&r.state, &r.n)
		return r, err
	}, `SELECT state, COUNT(*) FROM jobs GROUP BY state`)
	out := map[string]int{}
	for _, r := range rows {
		out[r.state] = r.n
	}
	return out, err
}
