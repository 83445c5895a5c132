package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/storage"
)

type registerInput struct {
	Body struct {
		Name    string `json:"name" example:"residents" doc:"The dataset; a new name starts at version 1, a known one gets its next version"`
		Path    string `json:"path" doc:"The source file in the server's import directory (absolute, or relative to it): CSV, Parquet or Arrow IPC"`
		Classes string `json:"classes" doc:"The confirmed classification (classes.yaml, as sluice dataset classify writes it and an administrator checked it)"`
		Profile string `json:"profile,omitempty" doc:"Masking profile for scenario views (default prod)"`
	}
}

type versionBody struct {
	Body metadata.DatasetVersion
}

type versionsBody struct {
	Body struct {
		Datasets []metadata.DatasetVersion `json:"datasets"`
	}
}

type namePath struct {
	Name string `path:"name"`
}

// registerDatasets adds the dataset operations. Raw data belongs to the
// platform: the platform roles see its metadata (never its content);
// scientists see a dataset only through a scenario that grants it.
func (s *Server) registerDatasets(api huma.API) {
	huma.Register(api, operation("register-dataset", http.MethodPost, "/api/v1/datasets", "Register a dataset version from a file on the server (admin)", 400, 403),
		func(ctx context.Context, in *registerInput) (*versionBody, error) {
			if err := require(ctx, metadata.RoleAdmin); err != nil {
				return nil, apiError(err)
			}
			v, err := s.registerDataset(ctx, in.Body.Name, in.Body.Path, in.Body.Classes, in.Body.Profile)
			if err != nil {
				return nil, apiError(err)
			}
			return &versionBody{Body: v}, nil
		})
	huma.Register(api, operation("list-datasets", http.MethodGet, "/api/v1/datasets", "The latest version of every dataset you may see"),
		func(ctx context.Context, _ *struct{}) (*versionsBody, error) {
			out := &versionsBody{}
			out.Body.Datasets = []metadata.DatasetVersion{}
			if !principal(ctx).Role.Platform() {
				return out, nil // scenarios grant datasets (not yet)
			}
			vs, err := s.meta.LatestDatasets(ctx)
			if err != nil {
				return nil, apiError(err)
			}
			out.Body.Datasets = vs
			return out, nil
		})
	huma.Register(api, operation("get-dataset", http.MethodGet, "/api/v1/datasets/{name}", "Every version of a dataset", 404),
		func(ctx context.Context, in *namePath) (*versionsBody, error) {
			if !principal(ctx).Role.Platform() {
				return nil, apiError(fmt.Errorf("dataset %s: %w", in.Name, metadata.ErrNotFound))
			}
			vs, err := s.meta.DatasetVersions(ctx, in.Name)
			if err != nil {
				return nil, apiError(err)
			}
			out := &versionsBody{}
			out.Body.Datasets = vs
			return out, nil
		})
}

// importPath resolves a server-side path and refuses one outside the
// import directory (symbolic links are resolved first: a link cannot
// point out of it).
func (s *Server) importPath(path string) (string, error) {
	dir := s.cfg.ImportDir
	if dir == "" {
		return "", fmt.Errorf("registration from a server path needs an import directory (import_dir, SLUICE_IMPORT_DIR): %w", metadata.ErrInvalidArgument)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%s: no such file in the import directory: %w", filepath.Base(path), dataset.ErrNotFound)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("the import directory %s: %v: %w", dir, err, metadata.ErrInvalidArgument)
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("path %q is outside the import directory %s: %w", path, dir, metadata.ErrInvalidArgument)
	}
	return real, nil
}

// registerDataset reads a source once to check it against its
// classification and profile it, then seals it into the store with a data
// key of its own as it is read a second time, and records the version. The
// source is never written unencrypted. A version that cannot be recorded
// leaves no object behind.
func (s *Server) registerDataset(ctx context.Context, name, path, classesYAML, profile string) (metadata.DatasetVersion, error) {
	v := metadata.DatasetVersion{Name: name, Profile: profile, Classes: classesYAML, CreatedBy: principal(ctx).ID}
	if v.Profile == "" {
		v.Profile = "prod"
	}
	if _, err := mask.Builtin(v.Profile); err != nil {
		return v, fmt.Errorf("profile %q: %v: %w", v.Profile, err, metadata.ErrInvalidArgument)
	}
	path, err := s.importPath(path)
	if err != nil {
		return v, err
	}
	classes, err := dataset.ParseClasses(name+".classes.yaml", []byte(classesYAML))
	if err != nil {
		return v, err
	}
	prof, err := dataset.Inspect(ctx, path, dataset.Options{})
	if err != nil {
		return v, err
	}
	known := map[string]bool{}
	for _, c := range prof.Columns {
		known[c.Name] = true
		cc := classes.Get(c.Name)
		v.Columns = append(v.Columns, metadata.Column{Name: c.Name, Type: c.Type, Class: string(cc.Class), Grade: cc.Grade, PII: string(cc.PII)})
	}
	for _, n := range classes.Names {
		if !known[n] {
			return v, &dataset.InputError{File: classes.Source, Column: n, Offset: -1, Msg: "classified column does not exist in " + name}
		}
	}
	v.Format, v.Rows = string(prof.Format), prof.Rows

	f, err := os.Open(path)
	if err != nil {
		return v, fmt.Errorf("%s: %v: %w", path, err, dataset.ErrNotFound)
	}
	defer f.Close()
	key := storage.NewDataKey()
	if v.WrappedKey, err = s.master.Wrap(key); err != nil {
		return v, err
	}
	v.Object = "datasets/" + name + "/" + randomHex(9)
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(f, h)}
	if err := storage.PutSealed(ctx, s.store, v.Object, key, counted); err != nil {
		return v, err
	}
	v.Size, v.SHA256 = counted.n, hex.EncodeToString(h.Sum(nil))
	rec, err := s.meta.AddDatasetVersion(ctx, v)
	if err != nil {
		s.store.Delete(context.WithoutCancel(ctx), v.Object)
		return v, err
	}
	s.log.Info("registered a dataset version", "dataset", rec.Name, "version", rec.Version, "rows", rec.Rows, "bytes", rec.Size)
	return rec, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
