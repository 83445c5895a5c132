package metadata

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ScenarioState is where a scenario is (R4, R5, R8).
type ScenarioState string

// Scenario states. Only an active scenario runs jobs.
const (
	ScenarioPending    ScenarioState = "pending"    // applied for, not decided
	ScenarioActive     ScenarioState = "active"     // approved, within its period
	ScenarioRejected   ScenarioState = "rejected"   // not approved
	ScenarioSuspended  ScenarioState = "suspended"  // rectification (整改): access closed
	ScenarioTerminated ScenarioState = "terminated" // ended: its keys and views destroyed
	ScenarioExpired    ScenarioState = "expired"    // past its period (shown, not stored)
)

// MaxScenarioPeriod is the longest authorisation (R5: three years).
const MaxScenarioPeriod = 3 * 365 * 24 * time.Hour

// ScenarioDataset is a dataset version and the exact columns a scenario may
// use of it (minimum necessary).
type ScenarioDataset struct {
	Name    string   `json:"name"`
	Version int      `json:"version,omitempty"` // 0 in an application: the latest
	Columns []string `json:"columns,omitempty"`
}

// Scenario is one scenario, one data list, one review (一场景一清单一审核).
type Scenario struct {
	ID        string            `json:"id"`
	TenantID  string            `json:"tenant_id"`
	Name      string            `json:"name"`
	Purpose   string            `json:"purpose"`
	Datasets  []ScenarioDataset `json:"datasets"`
	Version   int               `json:"version"`  // 1, then one more for each approved amendment of its data list
	Products  []string          `json:"products"` // expected product types
	Until     time.Time         `json:"until"`
	State     ScenarioState     `json:"state"`
	Applicant string            `json:"applicant"`
	DecidedBy string            `json:"decided_by,omitempty"`
	Comment   string            `json:"comment,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	Destroyed string            `json:"destroyed,omitempty"` // what termination destroyed
	PseudoKey []byte            `json:"-"`                   // wrapped: pseudonyms of this scenario's views
	ViewKey   []byte            `json:"-"`                   // wrapped: seals this scenario's cached views
}

// Effective is the state as it stands now: an active or suspended
// scenario past its period is expired.
func (s Scenario) Effective(now time.Time) ScenarioState {
	if (s.State == ScenarioActive || s.State == ScenarioSuspended || s.State == ScenarioPending) && now.After(s.Until) {
		return ScenarioExpired
	}
	return s.State
}

// ScenarioDecision is a decision on a scenario: the state it leads to and
// the states it may be taken from.
type ScenarioDecision struct {
	Verb string
	To   ScenarioState
	From []ScenarioState
}

// ScenarioDecisions are every decision there is.
var ScenarioDecisions = []ScenarioDecision{
	{"approve", ScenarioActive, []ScenarioState{ScenarioPending}},
	{"reject", ScenarioRejected, []ScenarioState{ScenarioPending}},
	{"suspend", ScenarioSuspended, []ScenarioState{ScenarioActive}},
	{"resume", ScenarioActive, []ScenarioState{ScenarioSuspended}},
	{"terminate", ScenarioTerminated, []ScenarioState{ScenarioPending, ScenarioActive, ScenarioSuspended, ScenarioExpired, ScenarioRejected}},
}

// CreateScenario records an application (pending).
func (s *SQLite) CreateScenario(ctx context.Context, sc Scenario) (Scenario, error) {
	if err := checkName("scenario", sc.Name); err != nil {
		return sc, err
	}
	sc.ID, sc.State, sc.Version = newID("scn"), ScenarioPending, 1
	sc.CreatedAt = fromMicros(now())
	sc.UpdatedAt = sc.CreatedAt
	ds, _ := json.Marshal(sc.Datasets)
	ps, _ := json.Marshal(sc.Products)
	_, err := s.db.ExecContext(ctx, `INSERT INTO scenarios (id, tenant_id, name, purpose, datasets, products, until, state, applicant, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sc.ID, sc.TenantID, sc.Name, sc.Purpose, string(ds), string(ps), sc.Until.UnixMicro(), string(sc.State), sc.Applicant, sc.CreatedAt.UnixMicro(), sc.UpdatedAt.UnixMicro())
	if err != nil {
		return sc, conflict(err, "scenario "+sc.Name)
	}
	return sc, nil
}

const scenarioColumns = `id, tenant_id, name, purpose, datasets, products, until, state, applicant, decided_by, comment, created_at, updated_at, destroyed, pseudo_key, view_key, version`

func scanScenario(sc scanner) (Scenario, error) {
	var s Scenario
	var ds, ps, state string
	var until, created, updated int64
	var decided, comment, destroyed sql.NullString
	if err := sc.Scan(&s.ID, &s.TenantID, &s.Name, &s.Purpose, &ds, &ps, &until, &state, &s.Applicant, &decided, &comment, &created, &updated, &destroyed, &s.PseudoKey, &s.ViewKey, &s.Version); err != nil {
		return s, err
	}
	s.State, s.DecidedBy, s.Comment, s.Destroyed = ScenarioState(state), decided.String, comment.String, destroyed.String
	s.Until, s.CreatedAt, s.UpdatedAt = fromMicros(until), fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(ds), &s.Datasets); err != nil {
		return s, err
	}
	err := json.Unmarshal([]byte(ps), &s.Products) // before s is read: Go does not order a return's operands
	return s, err
}

// GetScenario reads a scenario.
func (s *SQLite) GetScenario(ctx context.Context, id string) (Scenario, error) {
	sc, err := scanScenario(s.db.QueryRowContext(ctx, `SELECT `+scenarioColumns+` FROM scenarios WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sc, fmt.Errorf("scenario %s: %w", id, ErrNotFound)
	}
	return sc, err
}

// ListScenarios lists a tenant's scenarios, or every one for "".
func (s *SQLite) ListScenarios(ctx context.Context, tenantID string) ([]Scenario, error) {
	query, args := `SELECT `+scenarioColumns+` FROM scenarios ORDER BY created_at`, []any{}
	if tenantID != "" {
		query, args = `SELECT `+scenarioColumns+` FROM scenarios WHERE tenant_id = ? ORDER BY created_at`, []any{tenantID}
	}
	return queryAll(ctx, s.db, scanScenario, query, args...)
}

// DecideScenario takes a decision of a user on a scenario, with a comment,
// if it may be taken from the state the scenario is in now (an expired
// scenario can only be terminated). Approval makes the wrapped keys (keys);
// termination erases them and records what was destroyed.
func (s *SQLite) DecideScenario(ctx context.Context, id string, d ScenarioDecision, by, comment string, keys func() (pseudo, view []byte, err error), destroyed string) (Scenario, error) {
	to := d.To
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Scenario{}, err
	}
	defer tx.Rollback()
	sc, err := scanScenario(tx.QueryRowContext(ctx, `SELECT `+scenarioColumns+` FROM scenarios WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sc, fmt.Errorf("scenario %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return sc, err
	}
	from := sc.Effective(time.Now())
	if !slices.Contains(d.From, from) {
		return sc, fmt.Errorf("scenario %s is %s: it cannot be %s: %w", id, from, d.Verb+"d", ErrConflict)
	}
	pseudo, view := sc.PseudoKey, sc.ViewKey
	switch to {
	case ScenarioActive:
		if len(pseudo) == 0 {
			if pseudo, view, err = keys(); err != nil {
				return sc, err
			}
		}
	case ScenarioTerminated:
		pseudo, view = nil, nil // crypto-shredding: without them nothing of the scenario opens
	}
	t := now()
	_, err = tx.ExecContext(ctx, `UPDATE scenarios SET state = ?, decided_by = ?, comment = ?, updated_at = ?, pseudo_key = ?, view_key = ?,
		destroyed = COALESCE(?, destroyed) WHERE id = ?`,
		string(to), by, comment, t, pseudo, view, sql.NullString{String: destroyed, Valid: destroyed != ""}, id)
	if err != nil {
		return sc, err
	}
	if err := tx.Commit(); err != nil {
		return sc, err
	}
	return s.GetScenario(ctx, id)
}

// Amendment states.
const (
	AmendmentPending  = "pending"
	AmendmentApproved = "approved"
	AmendmentRejected = "rejected"
)

// Amendment is a change of a scenario's data list: a new version of it,
// approved again before it takes effect (一场景一清单一审核). Until then
// the scenario keeps the list it has.
type Amendment struct {
	ScenarioID string            `json:"scenario_id"`
	Version    int               `json:"version"` // the scenario's version once approved
	Datasets   []ScenarioDataset `json:"datasets"`
	State      string            `json:"state"`
	ProposedBy string            `json:"proposed_by"`
	DecidedBy  string            `json:"decided_by,omitempty"`
	Comment    string            `json:"comment,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
}

const amendmentColumns = `scenario_id, version, datasets, state, proposed_by, decided_by, comment, created_at`

func scanAmendment(sc scanner) (Amendment, error) {
	var a Amendment
	var ds string
	var decided, comment sql.NullString
	var created int64
	if err := sc.Scan(&a.ScenarioID, &a.Version, &ds, &a.State, &a.ProposedBy, &decided, &comment, &created); err != nil {
		return a, err
	}
	a.DecidedBy, a.Comment, a.CreatedAt = decided.String, comment.String, fromMicros(created)
	err := json.Unmarshal([]byte(ds), &a.Datasets)
	return a, err
}

// ProposeAmendment records a new data list for a scenario, pending; a
// scenario has at most one pending amendment, and only a live one (pending
// approval, active or suspended) can be amended.
func (s *SQLite) ProposeAmendment(ctx context.Context, scenarioID string, datasets []ScenarioDataset, by string) (Amendment, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Amendment{}, err
	}
	defer tx.Rollback()
	sc, err := scanScenario(tx.QueryRowContext(ctx, `SELECT `+scenarioColumns+` FROM scenarios WHERE id = ?`, scenarioID))
	if errors.Is(err, sql.ErrNoRows) {
		return Amendment{}, fmt.Errorf("scenario %s: %w", scenarioID, ErrNotFound)
	}
	if err != nil {
		return Amendment{}, err
	}
	if st := sc.Effective(time.Now()); st != ScenarioActive && st != ScenarioSuspended {
		return Amendment{}, fmt.Errorf("scenario %s is %s: only an active or suspended scenario is amended: %w", scenarioID, st, ErrConflict)
	}
	var pending int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM scenario_amendments WHERE scenario_id = ? AND state = ?`, scenarioID, AmendmentPending).Scan(&pending); err != nil {
		return Amendment{}, err
	}
	if pending > 0 {
		return Amendment{}, fmt.Errorf("scenario %s has an amendment waiting for a decision: %w", scenarioID, ErrConflict)
	}
	a := Amendment{ScenarioID: scenarioID, Datasets: datasets, State: AmendmentPending, ProposedBy: by, CreatedAt: fromMicros(now())}
	if err := tx.QueryRowContext(ctx, `SELECT MAX(?, COALESCE(MAX(version), 0)) + 1 FROM scenario_amendments WHERE scenario_id = ?`, sc.Version, scenarioID).Scan(&a.Version); err != nil {
		return Amendment{}, err
	}
	ds, _ := json.Marshal(datasets)
	if _, err := tx.ExecContext(ctx, `INSERT INTO scenario_amendments (scenario_id, version, datasets, state, proposed_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ScenarioID, a.Version, string(ds), a.State, a.ProposedBy, a.CreatedAt.UnixMicro()); err != nil {
		return Amendment{}, err
	}
	return a, tx.Commit()
}

// ListAmendments lists a scenario's amendments, the oldest first.
func (s *SQLite) ListAmendments(ctx context.Context, scenarioID string) ([]Amendment, error) {
	return queryAll(ctx, s.db, scanAmendment, `SELECT `+amendmentColumns+` FROM scenario_amendments WHERE scenario_id = ? ORDER BY version`, scenarioID)
}

// DecideAmendment approves or rejects a pending amendment. Approval gives
// the scenario the amendment's data list and version, if the scenario is
// still active or suspended.
func (s *SQLite) DecideAmendment(ctx context.Context, scenarioID string, version int, approve bool, by, comment string) (Scenario, Amendment, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Scenario{}, Amendment{}, err
	}
	defer tx.Rollback()
	a, err := scanAmendment(tx.QueryRowContext(ctx, `SELECT `+amendmentColumns+` FROM scenario_amendments WHERE scenario_id = ? AND version = ?`, scenarioID, version))
	if errors.Is(err, sql.ErrNoRows) {
		return Scenario{}, a, fmt.Errorf("scenario %s has no amendment %d: %w", scenarioID, version, ErrNotFound)
	}
	if err != nil {
		return Scenario{}, a, err
	}
	if a.State != AmendmentPending {
		return Scenario{}, a, fmt.Errorf("amendment %d of scenario %s is %s already: %w", version, scenarioID, a.State, ErrConflict)
	}
	a.State, a.DecidedBy, a.Comment = AmendmentRejected, by, comment
	if approve {
		a.State = AmendmentApproved
		sc, err := scanScenario(tx.QueryRowContext(ctx, `SELECT `+scenarioColumns+` FROM scenarios WHERE id = ?`, scenarioID))
		if err != nil {
			return Scenario{}, a, err
		}
		if st := sc.Effective(time.Now()); st != ScenarioActive && st != ScenarioSuspended {
			return Scenario{}, a, fmt.Errorf("scenario %s is %s: its amendment cannot take effect: %w", scenarioID, st, ErrConflict)
		}
		ds, _ := json.Marshal(a.Datasets)
		if _, err := tx.ExecContext(ctx, `UPDATE scenarios SET datasets = ?, version = ?, updated_at = ? WHERE id = ?`, string(ds), a.Version, now(), scenarioID); err != nil {
			return Scenario{}, a, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE scenario_amendments SET state = ?, decided_by = ?, comment = ? WHERE scenario_id = ? AND version = ?`,
		a.State, by, nullString(comment), scenarioID, version); err != nil {
		return Scenario{}, a, err
	}
	if err := tx.Commit(); err != nil {
		return Scenario{}, a, err
	}
	sc, err := s.GetScenario(ctx, scenarioID)
	return sc, a, err
}
