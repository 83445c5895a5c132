package sandbox

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
)

// Workspace layout under <state>/jobs/<id>/.
const (
	wsInputs = "in"
	wsCode   = "code"
	wsOutput = "out"
	wsStdout = "stdout"
	wsStderr = "stderr"
	wsResult = "result.json"
)

// JobDir is where a job's workspace lives.
func JobDir(stateDir, id string) string { return filepath.Join(stateDir, "jobs", id) }

// InputFormats are the files every input is offered as.
var InputFormats = []string{"data.arrow", "data.parquet", "data.csv"}

// Manifest describes /data/in to the job (/data/in/manifest.json).
type Manifest struct {
	Datasets []ManifestDataset `json:"datasets"`
}

// ManifestDataset is one input dataset.
type ManifestDataset struct {
	Name    string            `json:"name"`
	Rows    int64             `json:"rows"`
	Files   []string          `json:"files"`
	Columns []ManifestColumn  `json:"columns"`
	Masking map[string]string `json:"masking,omitempty"` // column → operator, when masked by sluice
}

// ManifestColumn is one column of an input.
type ManifestColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// createWorkspace lays out a job's directory: inputs in every format with a
// manifest, the code, and the output directory as a tmpfs of the output size
// limit. On error nothing is left behind.
func (r *Runner) createWorkspace(ctx context.Context, job *Job) (inst *Instance, err error) {
	stateDir, uids := r.stateDir, &r.uids
	dir := JobDir(stateDir, job.ID)
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("job %s: a workspace already exists at %s: %w", job.ID, dir, ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	uid, sandboxUID, err := uids.leaseFor(stateDir, job)
	if err != nil {
		removeWorkspace(dir)
		return nil, err
	}
	owner, err := filepath.Abs(stateDir)
	if err != nil {
		removeWorkspace(dir)
		uids.releaseFor(&Instance{Job: *job, UID: uid, SandboxUID: sandboxUID})
		return nil, err
	}
	ws := &Instance{
		Owner:      owner,
		Job:        *job,
		UID:        uid,
		SandboxUID: sandboxUID,
		Mounts:     Mounts{Inputs: filepath.Join(dir, wsInputs), Output: filepath.Join(dir, wsOutput)},
		Stdout:     filepath.Join(dir, wsStdout),
		Stderr:     filepath.Join(dir, wsStderr),
	}
	inst = ws
	defer func() {
		if err != nil {
			// ws, not inst: an error return has set inst to nil.
			removeWorkspace(dir)
			uids.releaseFor(ws)
		}
	}()
	if err := materializeInputs(ctx, inst.Mounts.Inputs, job.Inputs, r.open); err != nil {
		return nil, err
	}
	if job.Code != "" {
		inst.Mounts.Code = filepath.Join(dir, wsCode)
		if err := copyCode(job.Code, inst.Mounts.Code, r.code); err != nil {
			return nil, err
		}
	}
	if err := r.mountOut(inst.Mounts.Output, job.Limits.OutputBytes, uid); err != nil {
		return nil, err
	}
	for _, f := range []string{inst.Stdout, inst.Stderr} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

// materializeInputs writes each input (opened with open: the filesystem
// when nil) as Arrow IPC, Parquet and CSV, and the manifest, readable by the
// job user and by nobody else but root.
func materializeInputs(ctx context.Context, dir string, inputs []Input, open dataset.Opener) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var m Manifest
	for _, in := range inputs {
		d := filepath.Join(dir, in.Name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		var dsts []string
		for _, name := range InputFormats {
			dsts = append(dsts, filepath.Join(d, name))
		}
		schema, rows, err := dataset.Convert(ctx, in.Path, dataset.Options{Open: open}, dsts...)
		if err != nil {
			return fmt.Errorf("input %s: %w", in.Name, err)
		}
		md := ManifestDataset{Name: in.Name, Files: InputFormats, Rows: rows}
		for _, f := range schema.Fields() {
			md.Columns = append(md.Columns, ManifestColumn{Name: f.Name, Type: f.Type.String()})
		}
		if v, ok := schema.Metadata().GetValue(mask.MetadataKey); ok {
			json.Unmarshal([]byte(v), &md.Masking)
		}

		for _, name := range InputFormats {
			if err := os.Chmod(filepath.Join(d, name), 0o644); err != nil {
				return err
			}
		}
		m.Datasets = append(m.Datasets, md)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), append(data, '\n'), 0o644)
}

// CheckCode checks a code bundle (a directory or .tar.gz) as a job's
// workspace would take it — regular files and directories only, nothing
// that escapes, within lim — by unpacking it into a scratch directory under
// tmp that is removed after. The error names the limit or entry at fault.
func CheckCode(src, tmp string, lim CodeLimits) error {
	dir, err := os.MkdirTemp(tmp, "code-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return copyCode(src, filepath.Join(dir, "code"), lim)
}

// copyCode copies a code directory or .tar.gz into dst: regular files and
// directories only, world-readable, executable bits kept, within lim
// (counted while copying, so a small archive cannot unpack to any size).
func copyCode(src, dst string, lim CodeLimits) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("code %s: %w", src, ErrInvalidArgument)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	b := codeBudget{src: src, lim: lim, bytes: lim.Bytes}
	if fi.IsDir() {
		return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if rel == "." {
				return nil
			}
			if err := b.entry(rel); err != nil {
				return err
			}
			target := filepath.Join(dst, rel)
			switch {
			case d.IsDir():
				return os.MkdirAll(target, 0o755)
			case d.Type().IsRegular():
				info, err := d.Info()
				if err != nil {
					return err
				}
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				return b.write(rel, target, f, info.Size(), info.Mode())
			}
			return fmt.Errorf("code %s: %s is not a regular file or directory: %w", src, rel, ErrInvalidArgument)
		})
	}
	if !strings.HasSuffix(src, ".tar.gz") && !strings.HasSuffix(src, ".tgz") {
		return fmt.Errorf("code %s: give a directory or a .tar.gz: %w", src, ErrInvalidArgument)
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("code %s: not gzip: %v: %w", src, err, ErrInvalidArgument)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("code %s: %v: %w", src, err, ErrInvalidArgument)
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("code %s: entry %q escapes the code directory: %w", src, h.Name, ErrInvalidArgument)
		}
		if err := b.entry(name); err != nil {
			return err
		}
		target := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := b.write(name, target, tr, h.Size, h.FileInfo().Mode()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("code %s: entry %q is not a regular file or directory: %w", src, h.Name, ErrInvalidArgument)
		}
	}
}

// codeBudget counts a code bundle against its limits as it is copied.
type codeBudget struct {
	src   string
	lim   CodeLimits
	files int   // entries so far
	bytes int64 // bytes left
}

func (b *codeBudget) entry(rel string) error {
	b.files++
	switch {
	case b.files > b.lim.Files:
		return fmt.Errorf("code %s: more than %d files and directories (the code bundle limit): %w", b.src, b.lim.Files, ErrInvalidArgument)
	case strings.Count(rel, string(filepath.Separator))+1 > b.lim.Depth:
		return fmt.Errorf("code %s: %q is deeper than %d directories (the code bundle limit): %w", b.src, rel, b.lim.Depth, ErrInvalidArgument)
	}
	return nil
}

// write copies one file of declared size, never more than the bytes left.
func (b *codeBudget) write(rel, target string, r io.Reader, size int64, mode fs.FileMode) error {
	if size > b.bytes {
		return b.tooBig()
	}
	lr := &io.LimitedReader{R: r, N: b.bytes + 1}
	if err := writeCodeFile(target, lr, mode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("code %s: %q appears twice: %w", b.src, rel, ErrInvalidArgument)
		}
		return err
	}
	b.bytes = lr.N - 1
	if b.bytes < 0 {
		return b.tooBig()
	}
	return nil
}

func (b *codeBudget) tooBig() error {
	return fmt.Errorf("code %s: unpacks to more than %s (the code bundle limit): %w", b.src, FormatBytes(b.lim.Bytes), ErrInvalidArgument)
}

func writeCodeFile(target string, r io.Reader, mode fs.FileMode) error {
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	return createFrom(target, perm, r)
}

// createFrom writes r into a new file at path (never over an existing one).
// A file that could not be written whole is removed.
func createFrom(path string, perm fs.FileMode, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// mountOutput mounts a tmpfs of the given size, owned by the job's uid, at
// dir: the kernel enforces the output cap on the blocks used (apparent
// sizes are checked by outputOver and Collect).
func mountOutput(dir string, size int64, uid uint32) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%d,mode=0700,uid=%d,gid=%d,nr_inodes=65536", size, uid, uid)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount the output tmpfs at %s (sluice must run as root): %w", dir, err)
	}
	return nil
}

// removeWorkspace unmounts the output tmpfs and deletes the job directory.
func removeWorkspace(dir string) error {
	out := filepath.Join(dir, wsOutput)
	if err := unix.Unmount(out, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", out, err)
	}
	return os.RemoveAll(dir)
}
