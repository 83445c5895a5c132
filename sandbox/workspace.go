package sandbox

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
)

// Workspace layout under <state>/jobs/<id>/.
const (
	wsInputs   = "in"
	wsCode     = "code"
	wsOutput   = "out"
	wsStdout   = "stdout"
	wsStderr   = "stderr"
	wsInstance = "instance.json"
	wsResult   = "result.json"
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
func createWorkspace(ctx context.Context, stateDir string, job *Job) (inst *Instance, err error) {
	dir := JobDir(stateDir, job.ID)
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("job %s: a workspace already exists at %s: %w", job.ID, dir, ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			removeWorkspace(dir)
		}
	}()
	inst = &Instance{
		Job:    *job,
		Mounts: Mounts{Inputs: filepath.Join(dir, wsInputs), Output: filepath.Join(dir, wsOutput)},
		Stdout: filepath.Join(dir, wsStdout),
		Stderr: filepath.Join(dir, wsStderr),
	}
	if err := materializeInputs(ctx, inst.Mounts.Inputs, job.Inputs); err != nil {
		return nil, err
	}
	if job.Code != "" {
		inst.Mounts.Code = filepath.Join(dir, wsCode)
		if err := copyCode(job.Code, inst.Mounts.Code); err != nil {
			return nil, err
		}
	}
	if err := mountOutput(inst.Mounts.Output, job.Limits.OutputBytes); err != nil {
		return nil, err
	}
	for _, f := range []string{inst.Stdout, inst.Stderr} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

// materializeInputs writes each input as Arrow IPC, Parquet and CSV, and
// the manifest, readable by the job user and by nobody else but root.
func materializeInputs(ctx context.Context, dir string, inputs []Input) error {
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
		schema, rows, err := dataset.Convert(ctx, in.Path, dsts...)
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

// copyCode copies a code directory or .tar.gz into dst: regular files and
// directories only, world-readable, executable bits kept.
func copyCode(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("code %s: %w", src, ErrInvalidArgument)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if fi.IsDir() {
		return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
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
				return writeCodeFile(target, f, info.Mode())
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
			if err := writeCodeFile(target, tr, h.FileInfo().Mode()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("code %s: entry %q is not a regular file or directory: %w", src, h.Name, ErrInvalidArgument)
		}
	}
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

// mountOutput mounts a tmpfs of the given size, owned by the job user, at
// dir: the kernel enforces the output cap.
func mountOutput(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%d,mode=0700,uid=%d,gid=%d,nr_inodes=65536", size, JobUID, JobGID)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount the output tmpfs at %s (sluice must run as root): %w", dir, err)
	}
	return nil
}

// outputFull reports whether the output tmpfs has no space or inodes left.
func outputFull(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Bavail == 0 || st.Ffree == 0
}

// removeWorkspace unmounts the output tmpfs and deletes the job directory.
func removeWorkspace(dir string) error {
	out := filepath.Join(dir, wsOutput)
	if err := unix.Unmount(out, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", out, err)
	}
	return os.RemoveAll(dir)
}

// Output is a collected output file.
type Output struct {
	Path   string `json:"path"` // relative to /data/out
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Rejected is an output entry that was not collected.
type Rejected struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Collect copies the regular files under src into dst and reports what it
// refused: symbolic links, hard links, devices, FIFOs, sockets, hidden
// files and names that are not plain local paths. Nothing is followed.
func Collect(src, dst string) ([]Output, []Rejected, error) {
	var outs []Output
	var rejected []Rejected
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return nil, nil, err
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == src {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		reject := func(reason string) error {
			rejected = append(rejected, Rejected{Path: safeName(rel), Reason: reason})
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if why := unsafeName(d.Name()); why != "" {
			return reject(why)
		}
		if !filepath.IsLocal(rel) {
			return reject("name escapes the output directory")
		}
		switch t := d.Type(); {
		case d.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			return reject("symbolic link")
		case t&fs.ModeDevice != 0 || t&fs.ModeCharDevice != 0:
			return reject("device")
		case t&fs.ModeNamedPipe != 0:
			return reject("named pipe (FIFO)")
		case t&fs.ModeSocket != 0:
			return reject("socket")
		case !t.IsRegular():
			return reject("not a regular file")
		}
		o, why, err := copyOutput(p, filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		if why != "" {
			return reject(why)
		}
		o.Path = rel
		outs = append(outs, o)
		return nil
	})
	return outs, rejected, err
}

// copyOutput copies one regular file without following links, hashing it.
func copyOutput(src, dst string) (Output, string, error) {
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Output{}, "cannot open: " + err.Error(), nil
	}
	f := os.NewFile(uintptr(fd), src)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Output{}, "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return Output{}, "not a regular file", nil
	}
	if st.Nlink > 1 {
		return Output{}, "hard link", nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return Output{}, "", err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Output{}, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), f)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return Output{}, "", err
	}
	return Output{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, "", nil
}

// unsafeName says why a file name is refused, or "".
func unsafeName(name string) string {
	switch {
	case strings.HasPrefix(name, "."):
		return "hidden file"
	case !utf8.ValidString(name):
		return "name is not valid UTF-8"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "name contains control characters"
	}
	return ""
}

// safeName makes a refused name printable.
func safeName(name string) string {
	if utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsControl) < 0 {
		return name
	}
	return fmt.Sprintf("%q", name)
}
