package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/storage"
)

type registerInput struct {
	Body struct {
		Name    string `json:"name" example:"residents" doc:"The dataset; a new name starts at version 1, a known one gets its next version"`
		Path    string `json:"path,omitempty" doc:"The source file in the server's import directory (absolute, or relative to it): CSV, Parquet or Arrow IPC. Give path or upload"`
		Upload  string `json:"upload,omitempty" doc:"The ID of a source streamed to POST /api/v1/uploads. Give path or upload"`
		Classes string `json:"classes" doc:"The confirmed classification (classes.yaml, as sluice dataset classify writes it and an administrator checked it)"`
		Profile string `json:"profile,omitempty" doc:"Masking profile of its prod views: prod (default) or dev, or a profile's YAML (docs/masking.md)"`
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
			v, err := s.registerDataset(ctx, in.Body.Name, in.Body.Path, in.Body.Upload, in.Body.Classes, in.Body.Profile, nil)
			if err != nil {
				return nil, apiError(err)
			}
			return &versionBody{Body: v}, nil
		})
	huma.Register(api, operation("register-dataset-progress", http.MethodPost, "/api/v1/dataset-registrations",
		"Register a dataset version as POST /api/v1/datasets does, answering with its progress as it goes: JSON lines (admin)", 403),
		func(ctx context.Context, in *registerInput) (*huma.StreamResponse, error) {
			if err := require(ctx, metadata.RoleAdmin); err != nil {
				return nil, apiError(err)
			}
			return &huma.StreamResponse{Body: func(hc huma.Context) { s.registerWithProgress(hc, in) }}, nil
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

// registerDataset checks a source against its classification and profiles
// it, then records it as the next version of the dataset, sealed with a
// data key of its own. A source from the import directory is read once for
// the check and sealed as it is read a second time; an upload was sealed
// as it arrived and is read, decrypted, for the check, then taken as it is.
// The source is never written unencrypted. A version that cannot be
// recorded leaves no object behind (an upload stays, to be registered
// again).
//
// progress, when not nil, is told how far it is: rows checked ("check"),
// then bytes sealed ("seal", from the import directory only).
func (s *Server) registerDataset(ctx context.Context, name, path, uploadID, classesYAML, profile string, progress func(phase string, n int64)) (metadata.DatasetVersion, error) {
	if progress == nil {
		progress = func(string, int64) {}
	}
	v := metadata.DatasetVersion{Name: name, Profile: profile, Classes: classesYAML, CreatedBy: principal(ctx).ID}
	if v.Profile == "" {
		v.Profile = "prod"
	}
	if strings.Contains(v.Profile, "\n") { // a profile's YAML
		p, err := mask.ParseProfile(name+".profile.yaml", []byte(v.Profile))
		if err != nil {
			return v, err
		}
		v.ProfileYAML, v.Profile = v.Profile, cmp.Or(p.Name, "custom")
	} else if _, err := mask.Builtin(v.Profile); err != nil {
		return v, fmt.Errorf("profile %q: %v: %w", v.Profile, err, metadata.ErrInvalidArgument)
	}
	if (path == "") == (uploadID == "") {
		return v, fmt.Errorf("give the source as path (in the import directory) or as upload (POST /api/v1/uploads), one of them: %w", metadata.ErrInvalidArgument)
	}
	classes, err := dataset.ParseClasses(name+".classes.yaml", []byte(classesYAML))
	if err != nil {
		return v, err
	}
	var up metadata.Upload
	read, source := dataset.Options{}, path
	if uploadID != "" {
		if up, err = s.meta.GetUpload(ctx, uploadID); err != nil {
			return v, err
		}
		key, err := s.master.Unwrap(up.WrappedKey)
		if err != nil {
			return v, err
		}
		read, source = s.sealedRead(ctx, key), up.Object
	} else if source, err = s.importPath(path); err != nil {
		return v, err
	}
	read.Progress = func(rows int64) { progress("check", rows) }
	prof, err := dataset.Inspect(ctx, source, read)
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
	if uploadID != "" {
		v.Object, v.WrappedKey, v.Size, v.SHA256 = up.Object, up.WrappedKey, up.Size, up.SHA256
		rec, err := s.meta.RegisterUpload(ctx, v, uploadID)
		if err != nil {
			return v, err
		}
		s.log.Info("registered a dataset version from an upload", "dataset", rec.Name, "version", rec.Version, "rows", rec.Rows, "bytes", rec.Size)
		return rec, nil
	}

	f, err := os.Open(source)
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
	counted := &countingReader{r: io.TeeReader(f, h), progress: func(n int64) { progress("seal", n) }}
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

// RegistrationEvent is one line of a registration's progress: how far it
// is, then the version registered or the error that stopped it.
type RegistrationEvent struct {
	Phase   string                   `json:"phase,omitempty"` // check (rows read), seal (bytes sealed)
	Done    int64                    `json:"done,omitempty"`
	Version *metadata.DatasetVersion `json:"version,omitempty"`
	Error   *Error                   `json:"error,omitempty"`
}

// registerWithProgress registers a version, writing a progress event at
// most every half second, then the outcome. The status is 200 from the
// first line on: the outcome is the last line, and the audit trail records
// it (register-dataset) as well as the call.
func (s *Server) registerWithProgress(hc huma.Context, in *registerInput) {
	ctx := hc.Context()
	hc.SetHeader("Content-Type", "application/x-ndjson")
	w := hc.BodyWriter()
	flush := flusher(w)
	enc := json.NewEncoder(w)
	var last time.Time
	progress := func(phase string, n int64) {
		if time.Since(last) >= 500*time.Millisecond {
			last = time.Now()
			enc.Encode(RegistrationEvent{Phase: phase, Done: n})
			flush()
		}
	}
	b := in.Body
	v, err := s.registerDataset(ctx, b.Name, b.Path, b.Upload, b.Classes, b.Profile, progress)
	u := principal(ctx)
	result, ev := "ok", RegistrationEvent{Version: &v}
	if err != nil {
		ev = RegistrationEvent{Error: apiError(err)}
		result = ev.Error.Code
	}
	if aerr := s.appendAudit(context.WithoutCancel(ctx), audit.Record{Actor: u.ID, Role: string(u.Role), Action: "register-dataset", Resource: b.Name, Result: result}); aerr != nil {
		s.log.Error("audit: the registration's outcome was not recorded", "dataset", b.Name, "err", aerr)
	}
	enc.Encode(ev)
	flush()
}

// MaxUploadBytes bounds one streamed source.
const MaxUploadBytes = 64 << 30

type uploadInput struct {
	Name string `query:"name" required:"true" doc:"The source's file name: its extension names the format (.csv, .parquet, .arrow, .arrows)"`
	body io.Reader
}

// Resolve keeps the request body to be streamed by the handler (huma
// would read a declared body whole).
func (in *uploadInput) Resolve(ctx huma.Context) []error {
	in.body = ctx.BodyReader()
	return nil
}

type uploadBody struct {
	Body metadata.Upload
}

// registerUploads adds the streaming upload of a source: sealed as it
// arrives, in bounded memory, with a data key of its own; never written
// unencrypted. It is registered with POST /api/v1/datasets {"upload": ID}.
func (s *Server) registerUploads(api huma.API) {
	op := operation("upload-source", http.MethodPost, "/api/v1/uploads", "Stream a dataset source to the server, sealed as it arrives (admin)", 400, 403, 413)
	op.RequestBody = &huma.RequestBody{Required: true, Description: "The source file's bytes",
		Content: map[string]*huma.MediaType{"application/octet-stream": {Schema: &huma.Schema{Type: "string", Format: "binary"}}}}
	huma.Register(api, op, func(ctx context.Context, in *uploadInput) (*uploadBody, error) {
		if err := require(ctx, metadata.RoleAdmin); err != nil {
			return nil, apiError(err)
		}
		u, err := s.upload(ctx, in.Name, in.body)
		if err != nil {
			return nil, apiError(err)
		}
		return &uploadBody{Body: u}, nil
	})
}

func (s *Server) upload(ctx context.Context, name string, body io.Reader) (metadata.Upload, error) {
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case ".csv", ".parquet", ".arrow", ".arrows":
	default:
		return metadata.Upload{}, fmt.Errorf("name %q: the extension says the format: .csv, .parquet, .arrow or .arrows: %w", filepath.Base(name), metadata.ErrInvalidArgument)
	}
	if body == nil {
		return metadata.Upload{}, fmt.Errorf("no body: send the source's bytes: %w", metadata.ErrInvalidArgument)
	}
	key := storage.NewDataKey()
	wrapped, err := s.master.Wrap(key)
	if err != nil {
		return metadata.Upload{}, err
	}
	u := metadata.Upload{ID: "upl_" + randomHex(9), Name: filepath.Base(name), WrappedKey: wrapped, CreatedBy: principal(ctx).ID}
	u.Object = "uploads/" + u.ID + ext
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(io.LimitReader(body, MaxUploadBytes+1), h)}
	err = storage.PutSealed(ctx, s.store, u.Object, key, counted)
	if err == nil && counted.n > MaxUploadBytes {
		err = fmt.Errorf("the source is larger than %d bytes: %w", int64(MaxUploadBytes), metadata.ErrInvalidArgument)
	}
	if err == nil && counted.n == 0 {
		err = fmt.Errorf("the body is empty: send the source's bytes: %w", metadata.ErrInvalidArgument)
	}
	if err == nil {
		u.Size, u.SHA256 = counted.n, hex.EncodeToString(h.Sum(nil))
		u, err = s.meta.AddUpload(ctx, u)
	}
	if err != nil {
		s.store.Delete(context.WithoutCancel(ctx), u.Object)
		return metadata.Upload{}, err
	}
	s.log.Info("a source was uploaded", "upload", u.ID, "bytes", u.Size)
	return u, nil
}

type countingReader struct {
	r        io.Reader
	n        int64
	progress func(int64) // told the bytes read so far, when set
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil {
		c.progress(c.n)
	}
	return n, err
}
