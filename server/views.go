package server

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/storage"
)

// View kinds: what a scenario's jobs read.
const (
	ViewProd = "prod" // the approved columns, every row, the dataset's masking profile
	ViewDev  = "dev"  // the approved columns, the dev profile: a sample, noised, rare categories suppressed
)

// ViewInfo describes a view without a value of it.
type ViewInfo struct {
	Scenario string   `json:"scenario"`
	Dataset  string   `json:"dataset"`
	Version  int      `json:"version"`
	Kind     string   `json:"kind"`
	Rows     int64    `json:"rows"`
	Columns  []string `json:"columns"`
	Object   string   `json:"-"`
}

type viewInput struct {
	ID   string `path:"id"`
	Body struct {
		Dataset string `json:"dataset"`
		Kind    string `json:"kind" enum:"prod,dev"`
	}
}

type viewBody struct {
	Body ViewInfo
}

func (s *Server) registerViews(api huma.API) {
	huma.Register(api, operation("make-view", http.MethodPost, "/api/v1/scenarios/{id}/views",
		"Make (or remake) a view of one of an active scenario's datasets", 400, 403, 404, 409),
		func(ctx context.Context, in *viewInput) (*viewBody, error) {
			if err := require(ctx, metadata.RoleScientist, metadata.RoleAdmin); err != nil {
				return nil, apiError(err)
			}
			sc, err := s.visibleScenario(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			v, err := s.makeView(ctx, sc, in.Body.Dataset, in.Body.Kind)
			if err != nil {
				return nil, apiError(err)
			}
			return &viewBody{Body: v}, nil
		})
}

// viewObject is where a view is sealed: a name the scenario's datasets and
// the kinds determine, so that termination finds every one.
func viewObject(scenario, dataset string, version int, kind string) string {
	return fmt.Sprintf("views/%s/%s-v%d-%s", scenario, dataset, version, kind)
}

// makeView masks the approved columns of a scenario's dataset from the
// sealed raw source, decrypted as it is read, with the scenario's own
// pseudonym key (pseudonyms never join across scenarios), and seals the
// view under the scenario's view key.
func (s *Server) makeView(ctx context.Context, sc metadata.Scenario, name, kind string) (ViewInfo, error) {
	if st := sc.Effective(time.Now()); st != metadata.ScenarioActive {
		return ViewInfo{}, fmt.Errorf("scenario %s is %s: only an active scenario has views: %w", sc.ID, st, metadata.ErrConflict)
	}
	i := slices.IndexFunc(sc.Datasets, func(d metadata.ScenarioDataset) bool { return d.Name == name })
	if i < 0 {
		return ViewInfo{}, fmt.Errorf("scenario %s has no dataset %q: %w", sc.ID, name, metadata.ErrNotFound)
	}
	granted := sc.Datasets[i]
	v, err := s.meta.DatasetVersion(ctx, granted.Name, granted.Version)
	if err != nil {
		return ViewInfo{}, err
	}
	rawKey, err := s.master.Unwrap(v.WrappedKey)
	if err != nil {
		return ViewInfo{}, err
	}
	pseudo, err := s.master.Unwrap(sc.PseudoKey)
	if err != nil {
		return ViewInfo{}, err
	}
	viewKey, err := s.master.Unwrap(sc.ViewKey)
	if err != nil {
		return ViewInfo{}, err
	}
	var base *mask.Profile
	switch {
	case kind == ViewDev:
		base, err = mask.Builtin("dev")
	case v.ProfileYAML != "":
		base, err = mask.ParseProfile(v.Name+".profile.yaml", []byte(v.ProfileYAML))
	default:
		base, err = mask.Builtin(v.Profile)
	}
	if err != nil {
		return ViewInfo{}, err
	}
	prof := *base
	prof.Columns = maps.Clone(base.Columns)
	if prof.Columns == nil {
		prof.Columns = map[string]mask.Rule{}
	}
	for _, c := range v.Columns {
		if !slices.Contains(granted.Columns, c.Name) {
			prof.Columns[c.Name] = mask.Rule{Op: mask.Drop} // minimum necessary: nothing else leaves the raw data
		}
	}
	classes, err := dataset.ParseClasses(v.Name+".classes.yaml", []byte(v.Classes))
	if err != nil {
		return ViewInfo{}, err
	}
	read := s.sealedRead(ctx, rawKey)

	// The view is written to a private scratch file, sealed, and removed.
	tmp := filepath.Join(s.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return ViewInfo{}, err
	}
	scratch := filepath.Join(tmp, randomHex(8)+".arrow")
	defer os.Remove(scratch)
	rep, err := mask.File(ctx, v.Object, scratch, mask.Options{Profile: &prof, Classes: classes, Key: mask.Key(pseudo.Secret()), Read: read, Seed: 1})
	if err != nil {
		return ViewInfo{}, err
	}
	f, err := os.Open(scratch)
	if err != nil {
		return ViewInfo{}, err
	}
	defer f.Close()
	info := ViewInfo{Scenario: sc.ID, Dataset: v.Name, Version: v.Version, Kind: kind, Rows: rep.RowsOut, Object: viewObject(sc.ID, v.Name, v.Version, kind)}
	for _, c := range rep.Columns {
		if c.OutType != "" {
			info.Columns = append(info.Columns, c.Name)
		}
	}
	if err := storage.PutSealed(ctx, s.store, info.Object, viewKey, f); err != nil {
		return ViewInfo{}, err
	}
	return info, nil
}

// sealedRead reads datasets from sealed objects of the store, decrypted
// with key as they are read: no plaintext copy.
func (s *Server) sealedRead(ctx context.Context, key storage.DataKey) dataset.Options {
	open := storage.Opener(ctx, s.store, key)
	return dataset.Options{Open: func(name string) (dataset.File, int64, error) {
		o, size, err := open(name)
		return o, size, err
	}}
}

// dropViews deletes a scenario's sealed views (their key is erased too:
// what a deletion misses no one can open).
func (s *Server) dropViews(ctx context.Context, sc metadata.Scenario) {
	for _, d := range sc.Datasets {
		for _, kind := range []string{ViewProd, ViewDev} {
			if err := s.store.Delete(ctx, viewObject(sc.ID, d.Name, d.Version, kind)); err != nil {
				s.log.Error("deleting a terminated scenario's view", "scenario", sc.ID, "err", err)
			}
		}
	}
}
