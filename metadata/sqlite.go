package metadata

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// SQLite is the Store in one SQLite database file (pure Go).
type SQLite struct{ db *sql.DB }

var _ Store = (*SQLite)(nil)

// migrations bring a database to the current schema, one version each.
var migrations = []string{
	`CREATE TABLE tenants (
		id         TEXT PRIMARY KEY,
		name       TEXT NOT NULL UNIQUE,
		created_at INTEGER NOT NULL
	);
	CREATE TABLE users (
		id         TEXT PRIMARY KEY,
		name       TEXT NOT NULL UNIQUE,
		role       TEXT NOT NULL,
		tenant_id  TEXT REFERENCES tenants(id),
		created_at INTEGER NOT NULL,
		revoked_at INTEGER
	);
	CREATE INDEX users_tenant ON users(tenant_id);
	CREATE TABLE tokens (
		id         TEXT PRIMARY KEY,
		user_id    TEXT NOT NULL REFERENCES users(id),
		hash       BLOB NOT NULL UNIQUE,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		revoked_at INTEGER
	);`,
	`CREATE TABLE dataset_versions (
		name        TEXT NOT NULL,
		version     INTEGER NOT NULL,
		format      TEXT NOT NULL,
		rows        INTEGER NOT NULL,
		size        INTEGER NOT NULL,
		sha256      TEXT NOT NULL,
		columns     TEXT NOT NULL,
		classes     TEXT NOT NULL,
		profile     TEXT NOT NULL,
		object      TEXT NOT NULL UNIQUE,
		wrapped_key BLOB NOT NULL,
		created_at  INTEGER NOT NULL,
		created_by  TEXT NOT NULL REFERENCES users(id),
		PRIMARY KEY (name, version)
	);`,
	`CREATE TABLE scenarios (
		id         TEXT PRIMARY KEY,
		tenant_id  TEXT NOT NULL REFERENCES tenants(id),
		name       TEXT NOT NULL,
		purpose    TEXT NOT NULL,
		datasets   TEXT NOT NULL,
		products   TEXT NOT NULL,
		until      INTEGER NOT NULL,
		state      TEXT NOT NULL,
		applicant  TEXT NOT NULL REFERENCES users(id),
		decided_by TEXT,
		comment    TEXT,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		destroyed  TEXT,
		pseudo_key BLOB,
		view_key   BLOB,
		UNIQUE (tenant_id, name)
	);`,
	`CREATE TABLE alerts (
		id      TEXT PRIMARY KEY,
		time    INTEGER NOT NULL,
		kind    TEXT NOT NULL,
		subject TEXT NOT NULL,
		detail  TEXT NOT NULL
	);
	CREATE INDEX alerts_time ON alerts(time);`,
	`CREATE TABLE code_bundles (
		digest     TEXT NOT NULL,
		tenant_id  TEXT NOT NULL REFERENCES tenants(id),
		size       INTEGER NOT NULL,
		created_by TEXT NOT NULL REFERENCES users(id),
		created_at INTEGER NOT NULL,
		PRIMARY KEY (tenant_id, digest)
	);
	CREATE TABLE jobs (
		id           TEXT PRIMARY KEY,
		tenant_id    TEXT NOT NULL REFERENCES tenants(id),
		scenario_id  TEXT NOT NULL REFERENCES scenarios(id),
		submitter    TEXT NOT NULL REFERENCES users(id),
		kind         TEXT NOT NULL,
		image        TEXT NOT NULL,
		image_digest TEXT NOT NULL,
		code_digest  TEXT NOT NULL,
		command      TEXT NOT NULL,
		runtime      TEXT NOT NULL,
		limits       TEXT NOT NULL,
		state        TEXT NOT NULL,
		reason       TEXT,
		exit_code    INTEGER,
		error        TEXT,
		created_at   INTEGER NOT NULL,
		updated_at   INTEGER NOT NULL,
		record       BLOB
	);
	CREATE INDEX jobs_tenant ON jobs(tenant_id, created_at);
	CREATE INDEX jobs_scenario ON jobs(scenario_id, kind, state);
	CREATE INDEX jobs_state ON jobs(state);`,
	`CREATE TABLE uploads (
		id          TEXT PRIMARY KEY,
		name        TEXT NOT NULL,
		size        INTEGER NOT NULL,
		sha256      TEXT NOT NULL,
		object      TEXT NOT NULL UNIQUE,
		wrapped_key BLOB NOT NULL,
		created_by  TEXT NOT NULL REFERENCES users(id),
		created_at  INTEGER NOT NULL
	);`,
	`ALTER TABLE scenarios ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
	CREATE TABLE scenario_amendments (
		scenario_id TEXT NOT NULL REFERENCES scenarios(id),
		version     INTEGER NOT NULL,
		datasets    TEXT NOT NULL,
		state       TEXT NOT NULL,
		proposed_by TEXT NOT NULL REFERENCES users(id),
		decided_by  TEXT,
		comment     TEXT,
		created_at  INTEGER NOT NULL,
		PRIMARY KEY (scenario_id, version)
	);`,
	`ALTER TABLE dataset_versions ADD COLUMN profile_yaml TEXT;`,
	`CREATE TABLE egress_requests (
		id          TEXT PRIMARY KEY,
		job_id      TEXT NOT NULL UNIQUE REFERENCES jobs(id),
		tenant_id   TEXT NOT NULL REFERENCES tenants(id),
		scenario_id TEXT NOT NULL REFERENCES scenarios(id),
		state       TEXT NOT NULL,
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL
	);
	CREATE INDEX egress_tenant ON egress_requests(tenant_id, created_at);
	CREATE TABLE egress_products (
		request_id TEXT NOT NULL REFERENCES egress_requests(id),
		name       TEXT NOT NULL,
		size       INTEGER NOT NULL,
		sha256     TEXT NOT NULL,
		decision   TEXT NOT NULL,
		approvals  INTEGER NOT NULL,
		policy     TEXT NOT NULL,
		reasons    TEXT NOT NULL,
		findings   TEXT NOT NULL,
		input      TEXT NOT NULL,
		checked_at INTEGER NOT NULL,
		PRIMARY KEY (request_id, name)
	);`,
	`ALTER TABLE egress_requests ADD COLUMN justification TEXT;`,
}

// OpenSQLite opens (creating it if need be) the database at path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(5000)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("metadata %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this sluice (%d)", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *SQLite) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func now() int64 { return time.Now().UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// scanner is a row to read: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// queryAll is every row of a query, read by scan; an empty list, not nil,
// when there is none.
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func fromNullMicros(us sql.NullInt64) *time.Time {
	if !us.Valid {
		return nil
	}
	t := fromMicros(us.Int64)
	return &t
}

// conflict turns a uniqueness violation into ErrConflict.
func conflict(err error, what string) error {
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return err
}

// CreateTenant creates a tenant.
func (s *SQLite) CreateTenant(ctx context.Context, name string) (Tenant, error) {
	if err := checkName("tenant", name); err != nil {
		return Tenant{}, err
	}
	t := Tenant{ID: newID("tnt"), Name: name, CreatedAt: fromMicros(now())}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`, t.ID, t.Name, t.CreatedAt.UnixMicro())
	if err != nil {
		return Tenant{}, conflict(err, "tenant "+name)
	}
	return t, nil
}

// GetTenant reads a tenant.
func (s *SQLite) GetTenant(ctx context.Context, id string) (Tenant, error) {
	t, err := scanTenant(s.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM tenants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	return t, err
}

func scanTenant(sc scanner) (Tenant, error) {
	var t Tenant
	var created int64
	err := sc.Scan(&t.ID, &t.Name, &created)
	t.CreatedAt = fromMicros(created)
	return t, err
}

// ListTenants lists every tenant by name.
func (s *SQLite) ListTenants(ctx context.Context) ([]Tenant, error) {
	return queryAll(ctx, s.db, scanTenant, `SELECT id, name, created_at FROM tenants ORDER BY name`)
}

// CreateUser creates a user.
func (s *SQLite) CreateUser(ctx context.Context, name string, role Role, tenantID string) (User, error) {
	if err := checkName("user", name); err != nil {
		return User{}, err
	}
	switch {
	case !role.valid():
		return User{}, fmt.Errorf("role %q: use admin, scientist, reviewer, security or auditor: %w", role, ErrInvalidArgument)
	case role.Platform() && tenantID != "":
		return User{}, fmt.Errorf("role %s belongs to the platform: give no tenant: %w", role, ErrInvalidArgument)
	case !role.Platform() && tenantID == "":
		return User{}, fmt.Errorf("role %s belongs to a tenant: give one: %w", role, ErrInvalidArgument)
	}
	if tenantID != "" {
		if _, err := s.GetTenant(ctx, tenantID); err != nil {
			return User{}, err
		}
	}
	u := User{ID: newID("usr"), Name: name, Role: role, TenantID: tenantID, CreatedAt: fromMicros(now())}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, name, role, tenant_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		u.ID, u.Name, string(u.Role), sql.NullString{String: tenantID, Valid: tenantID != ""}, u.CreatedAt.UnixMicro())
	if err != nil {
		return User{}, conflict(err, "user "+name)
	}
	return u, nil
}

const userColumns = `u.id, u.name, u.role, u.tenant_id, u.created_at, u.revoked_at`

func scanUser(sc scanner) (User, error) {
	var u User
	var tenant sql.NullString
	var created int64
	var revoked sql.NullInt64
	var role string
	if err := sc.Scan(&u.ID, &u.Name, &role, &tenant, &created, &revoked); err != nil {
		return User{}, err
	}
	u.Role, u.TenantID, u.CreatedAt, u.RevokedAt = Role(role), tenant.String, fromMicros(created), fromNullMicros(revoked)
	return u, nil
}

// GetUser reads a user.
func (s *SQLite) GetUser(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	return u, err
}

// ListUsers lists a tenant's users (every user for "") by name.
func (s *SQLite) ListUsers(ctx context.Context, tenantID string) ([]User, error) {
	query, args := `SELECT `+userColumns+` FROM users u ORDER BY u.name`, []any{}
	if tenantID != "" {
		query, args = `SELECT `+userColumns+` FROM users u WHERE u.tenant_id = ? ORDER BY u.name`, []any{tenantID}
	}
	return queryAll(ctx, s.db, scanUser, query, args...)
}

// CountUsers counts every user.
func (s *SQLite) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

// RevokeUser ends a user and every token of theirs, in one transaction.
func (s *SQLite) RevokeUser(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	t := now()
	res, err := tx.ExecContext(ctx, `UPDATE users SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, t, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE user_id = ?`, t, id); err != nil {
		return err
	}
	return tx.Commit()
}

// CreateToken makes a token for a live user.
func (s *SQLite) CreateToken(ctx context.Context, userID string, ttl time.Duration) (Token, Secret, error) {
	if ttl <= 0 || ttl > MaxTokenTTL {
		return Token{}, "", fmt.Errorf("token lifetime %v: give one up to %v: %w", ttl, MaxTokenTTL, ErrInvalidArgument)
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return Token{}, "", err
	}
	if u.RevokedAt != nil {
		return Token{}, "", fmt.Errorf("user %s is revoked: %w", userID, ErrInvalidArgument)
	}
	secret := newSecret()
	created := now()
	tok := Token{ID: newID("tok"), UserID: userID, CreatedAt: fromMicros(created), ExpiresAt: fromMicros(created).Add(ttl)}
	_, err = s.db.ExecContext(ctx, `INSERT INTO tokens (id, user_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		tok.ID, userID, hashSecret(secret.Reveal()), created, tok.ExpiresAt.UnixMicro())
	if err != nil {
		return Token{}, "", err
	}
	return tok, secret, nil
}

// Authenticate finds the live user of a live token.
func (s *SQLite) Authenticate(ctx context.Context, secret string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE t.hash = ? AND t.revoked_at IS NULL AND u.revoked_at IS NULL AND t.expires_at > ?`, hashSecret(secret), now()))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrUnauthenticated
	}
	return u, err
}

// GetToken reads a token (never its secret, which is not kept).
func (s *SQLite) GetToken(ctx context.Context, id string) (Token, error) {
	var t Token
	var created, expires int64
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, user_id, created_at, expires_at, revoked_at FROM tokens WHERE id = ?`, id).
		Scan(&t.ID, &t.UserID, &created, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromMicros(created), fromMicros(expires), fromNullMicros(revoked)
	return t, err
}

// RevokeToken ends a token.
func (s *SQLite) RevokeToken(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, now(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	return nil
}
