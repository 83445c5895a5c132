package metadata

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Column is one column of a dataset version: its type and its confirmed
// classification. No value of it.
type Column struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Class string `json:"class"`
	Grade int    `json:"grade,omitempty"`
	PII   string `json:"pii,omitempty"`
}

// DatasetVersion is one immutable version of a registered dataset: a new
// upload is a new version.
type DatasetVersion struct {
	Name        string    `json:"name"`
	Version     int       `json:"version"`
	Format      string    `json:"format"`
	Rows        int64     `json:"rows"`
	Size        int64     `json:"size"`   // bytes of the source as registered
	SHA256      string    `json:"sha256"` // of the source as registered
	Columns     []Column  `json:"columns"`
	Classes     string    `json:"-"`       // the confirmed classification (YAML), as given
	Profile     string    `json:"profile"` // the masking profile of its prod views: a built-in one's name, or ProfileYAML's
	ProfileYAML string    `json:"-"`       // a profile given as YAML, when not built in
	Object      string    `json:"-"`       // the sealed object in the store
	WrappedKey  []byte    `json:"-"`       // its data key, wrapped by the master key
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

// AddDatasetVersion records the next version of a dataset (version 1 for
// a new one) and returns it with its number.
func (s *SQLite) AddDatasetVersion(ctx context.Context, v DatasetVersion) (DatasetVersion, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return v, err
	}
	defer tx.Rollback()
	if v, err = addDatasetVersion(ctx, tx, v); err != nil {
		return v, err
	}
	return v, tx.Commit()
}

// addDatasetVersion records the next version of a dataset in tx.
func addDatasetVersion(ctx context.Context, tx *sql.Tx, v DatasetVersion) (DatasetVersion, error) {
	if err := checkName("dataset", v.Name); err != nil {
		return v, err
	}
	cols, err := json.Marshal(v.Columns)
	if err != nil {
		return v, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE name = ?`, v.Name).Scan(&v.Version); err != nil {
		return v, err
	}
	v.CreatedAt = fromMicros(now())
	_, err = tx.ExecContext(ctx, `INSERT INTO dataset_versions (name, version, format, rows, size, sha256, columns, classes, profile, object, wrapped_key, created_at, created_by, profile_yaml)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.Name, v.Version, v.Format, v.Rows, v.Size, v.SHA256, string(cols), v.Classes, v.Profile, v.Object, v.WrappedKey, v.CreatedAt.UnixMicro(), v.CreatedBy, nullString(v.ProfileYAML))
	return v, conflict(err, "dataset "+v.Name)
}

const versionColumns = `name, version, format, rows, size, sha256, columns, classes, profile, object, wrapped_key, created_at, created_by, profile_yaml`

func scanVersion(sc scanner) (DatasetVersion, error) {
	var v DatasetVersion
	var cols string
	var created int64
	var profileYAML sql.NullString
	if err := sc.Scan(&v.Name, &v.Version, &v.Format, &v.Rows, &v.Size, &v.SHA256, &cols, &v.Classes, &v.Profile, &v.Object, &v.WrappedKey, &created, &v.CreatedBy, &profileYAML); err != nil {
		return v, err
	}
	v.ProfileYAML = profileYAML.String
	v.CreatedAt = fromMicros(created)
	err := json.Unmarshal([]byte(cols), &v.Columns) // before v is read: Go does not order a return's operands
	return v, err
}

// DatasetVersions lists a dataset's versions, oldest first.
func (s *SQLite) DatasetVersions(ctx context.Context, name string) ([]DatasetVersion, error) {
	out, err := queryAll(ctx, s.db, scanVersion, `SELECT `+versionColumns+` FROM dataset_versions WHERE name = ? ORDER BY version`, name)
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("dataset %s: %w", name, ErrNotFound)
	}
	return out, err
}

// LatestDatasets lists the latest version of every dataset, by name.
func (s *SQLite) LatestDatasets(ctx context.Context) ([]DatasetVersion, error) {
	return queryAll(ctx, s.db, scanVersion, `SELECT `+versionColumns+` FROM dataset_versions d
		WHERE version = (SELECT MAX(version) FROM dataset_versions WHERE name = d.name) ORDER BY name`)
}

// DatasetVersion reads one version.
func (s *SQLite) DatasetVersion(ctx context.Context, name string, version int) (DatasetVersion, error) {
	v, err := scanVersion(s.db.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM dataset_versions WHERE name = ? AND version = ?`, name, version))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("dataset %s version %d: %w", name, version, ErrNotFound)
	}
	return v, err
}

// Upload is a source streamed to the server and sealed as it arrived,
// waiting to be registered as a dataset version (which takes its object
// and key as they are: the source is never sealed twice).
type Upload struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"` // the file name the client gave (its extension names the format)
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	Object     string    `json:"-"`
	WrappedKey []byte    `json:"-"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
}

// AddUpload records a sealed upload.
func (s *SQLite) AddUpload(ctx context.Context, u Upload) (Upload, error) {
	u.CreatedAt = fromMicros(now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO uploads (id, name, size, sha256, object, wrapped_key, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, u.Size, u.SHA256, u.Object, u.WrappedKey, u.CreatedBy, u.CreatedAt.UnixMicro())
	return u, conflict(err, "upload "+u.ID)
}

// GetUpload reads an upload.
func (s *SQLite) GetUpload(ctx context.Context, id string) (Upload, error) {
	var u Upload
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, size, sha256, object, wrapped_key, created_by, created_at FROM uploads WHERE id = ?`, id).
		Scan(&u.ID, &u.Name, &u.Size, &u.SHA256, &u.Object, &u.WrappedKey, &u.CreatedBy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("upload %s: %w", id, ErrNotFound)
	}
	u.CreatedAt = fromMicros(created)
	return u, err
}

// RegisterUpload records the next version of a dataset from an upload, and
// consumes the upload, in one transaction.
func (s *SQLite) RegisterUpload(ctx context.Context, v DatasetVersion, uploadID string) (DatasetVersion, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return v, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, uploadID)
	if err != nil {
		return v, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return v, fmt.Errorf("upload %s: %w", uploadID, ErrNotFound)
	}
	rec, err := addDatasetVersion(ctx, tx, v)
	if err != nil {
		return rec, err
	}
	return rec, tx.Commit()
}
