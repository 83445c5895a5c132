package metadata

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Role is what a user may do.
type Role string

// Roles (SPEC §2). Every role but scientist belongs to the platform.
const (
	RoleAdmin     Role = "admin"
	RoleScientist Role = "scientist"
	RoleReviewer  Role = "reviewer"
	RoleSecurity  Role = "security"
	RoleAuditor   Role = "auditor"
)

// Platform reports whether the role belongs to the platform (no tenant).
func (r Role) Platform() bool { return r != RoleScientist }

func (r Role) valid() bool {
	switch r {
	case RoleAdmin, RoleScientist, RoleReviewer, RoleSecurity, RoleAuditor:
		return true
	}
	return false
}

// Tenant is an operator.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// User is a person (or a system) with a role; scientists belong to a
// tenant, the platform roles to none.
type User struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	TenantID  string     `json:"tenant_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Token is an API token, without its secret.
type Token struct {
	ID        string     `json:"id"`
	UserID    string     `json:"user_id"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Secret is a token's secret: shown once, never stored, never logged.
type Secret string

// LogValue keeps the secret out of logs.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the secret out of fmt.
func (Secret) String() string { return "[redacted]" }

// Reveal is the secret itself, to hand to its owner once.
func (s Secret) Reveal() string { return string(s) }

// MaxTokenTTL is the longest a token may live.
const MaxTokenTTL = 366 * 24 * time.Hour

// Store keeps tenants, users, tokens, datasets, scenarios, jobs, code
// bundles and alerts.
type Store interface {
	CreateTenant(ctx context.Context, name string) (Tenant, error)
	GetTenant(ctx context.Context, id string) (Tenant, error)
	ListTenants(ctx context.Context) ([]Tenant, error)

	// CreateUser creates a user; a scientist needs a tenant, the platform
	// roles must have none.
	CreateUser(ctx context.Context, name string, role Role, tenantID string) (User, error)
	GetUser(ctx context.Context, id string) (User, error)
	// ListUsers lists a tenant's users, or every user for "".
	ListUsers(ctx context.Context, tenantID string) ([]User, error)
	// RevokeUser ends a user and all their tokens.
	RevokeUser(ctx context.Context, id string) error
	// CountUsers counts users, revoked ones included.
	CountUsers(ctx context.Context) (int, error)

	// CreateToken makes a token for a user, valid for ttl.
	CreateToken(ctx context.Context, userID string, ttl time.Duration) (Token, Secret, error)
	// Authenticate returns the live user a live token belongs to, or
	// ErrUnauthenticated.
	Authenticate(ctx context.Context, secret string) (User, error)
	GetToken(ctx context.Context, id string) (Token, error)
	RevokeToken(ctx context.Context, id string) error

	// AddDatasetVersion records the next version of a dataset.
	AddDatasetVersion(ctx context.Context, v DatasetVersion) (DatasetVersion, error)
	DatasetVersion(ctx context.Context, name string, version int) (DatasetVersion, error)
	DatasetVersions(ctx context.Context, name string) ([]DatasetVersion, error)
	LatestDatasets(ctx context.Context) ([]DatasetVersion, error)
	// AddUpload records a source streamed in and sealed, to be registered.
	AddUpload(ctx context.Context, u Upload) (Upload, error)
	GetUpload(ctx context.Context, id string) (Upload, error)
	// RegisterUpload records a dataset version from an upload and consumes it.
	RegisterUpload(ctx context.Context, v DatasetVersion, uploadID string) (DatasetVersion, error)

	CreateScenario(ctx context.Context, sc Scenario) (Scenario, error)
	GetScenario(ctx context.Context, id string) (Scenario, error)
	// ListScenarios lists a tenant's scenarios, or every one for "".
	ListScenarios(ctx context.Context, tenantID string) ([]Scenario, error)
	// DecideScenario takes a decision on a scenario, if it may be taken.
	DecideScenario(ctx context.Context, id string, d ScenarioDecision, by, comment string, keys func() (pseudo, view []byte, err error), destroyed string) (Scenario, error)

	CreateJob(ctx context.Context, j Job) (Job, error)
	GetJob(ctx context.Context, id string) (Job, error)
	ListJobs(ctx context.Context, f JobFilter) ([]Job, error)
	// RecordJob stores what the sandbox reports of a job that has not ended.
	RecordJob(ctx context.Context, id string, p JobProgress) error
	// EndUnassignedJob fails a queued job the sandbox has not taken.
	EndUnassignedJob(ctx context.Context, id, reason, msg string) error
	// DevSucceeded lists the code digests that ran successfully in dev
	// under a scenario.
	DevSucceeded(ctx context.Context, scenarioID string) ([]string, error)
	// CountJobs counts the jobs in each state.
	CountJobs(ctx context.Context) (map[string]int, error)
	AddCodeBundle(ctx context.Context, b CodeBundle) (CodeBundle, error)
	GetCodeBundle(ctx context.Context, tenantID, digest string) (CodeBundle, error)

	// ProposeAmendment records a new data list for a scenario, pending.
	ProposeAmendment(ctx context.Context, scenarioID string, datasets []ScenarioDataset, by string) (Amendment, error)
	ListAmendments(ctx context.Context, scenarioID string) ([]Amendment, error)
	// DecideAmendment approves (the scenario takes the new list) or rejects one.
	DecideAmendment(ctx context.Context, scenarioID string, version int, approve bool, by, comment string) (Scenario, Amendment, error)

	// CreateEgressRequest records a finished prod job's egress request.
	CreateEgressRequest(ctx context.Context, r EgressRequest) (EgressRequest, error)
	AddEgressProduct(ctx context.Context, requestID string, p EgressProduct) error
	SetEgressState(ctx context.Context, id, state string) error
	GetEgressRequest(ctx context.Context, id string) (EgressRequest, error)
	EgressRequestOfJob(ctx context.Context, jobID string) (EgressRequest, error)
	ListEgressRequests(ctx context.Context, tenantID string) ([]EgressRequest, error)
	WithdrawEgress(ctx context.Context, id string) error
	JustifyEgress(ctx context.Context, id, text string) error
	// ProdJobsWithoutEgress lists finished prod jobs whose products are not
	// all decided.
	ProdJobsWithoutEgress(ctx context.Context) ([]Job, error)

	AddAlert(ctx context.Context, a Alert) (Alert, error)
	// ListAlerts lists the alerts since a time, the newest first.
	ListAlerts(ctx context.Context, since time.Time) ([]Alert, error)

	Close() error
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,62}$`)

func checkName(what, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%s name %q: use 2-63 lower-case letters, digits, '.', '_' and '-': %w", what, name, ErrInvalidArgument)
	}
	return nil
}

// newID is a random identifier with a kind prefix.
func newID(prefix string) string {
	b := make([]byte, 9)
	rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// newSecret is a token secret: 256 random bits.
func newSecret() Secret {
	b := make([]byte, 32)
	rand.Read(b)
	return Secret("sluice_" + base64.RawURLEncoding.EncodeToString(b))
}

// hashSecret is what is stored of a secret.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
