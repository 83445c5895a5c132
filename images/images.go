package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/image-spec/identity"
	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/internal/atomicfile"
)

// Errors.
var (
	ErrInvalidDefinition = errors.New("invalid image definition")
	// ErrInvalidImage: an image tarball that cannot be used for jobs.
	ErrInvalidImage = errors.New("invalid image")
	ErrBuild        = errors.New("image build failed")
)

// builderVersion changes whenever the way images are built changes, so that
// cached images are rebuilt.
const builderVersion = "3"

// Definition is an image.yaml.
type Definition struct {
	Name     string   `yaml:"name"`
	Builder  string   `yaml:"builder"` // busybox-static | debootstrap
	Suite    string   `yaml:"suite,omitempty"`
	Mirror   string   `yaml:"mirror,omitempty"`
	Packages []string `yaml:"packages,omitempty"`
	Cmd      []string `yaml:"cmd,omitempty"`
	Entry    []string `yaml:"entrypoint,omitempty"`
	Env      []string `yaml:"env,omitempty"`
	Workdir  string   `yaml:"workdir,omitempty"`

	raw []byte
}

var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	pkgPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

// Load reads dir/image.yaml.
func Load(dir string) (*Definition, error) {
	path := filepath.Join(dir, "image.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrInvalidDefinition)
	}
	var d Definition
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrInvalidDefinition)
	}
	d.raw = data
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format+": %w", append(append([]any{path}, args...), ErrInvalidDefinition)...)
	}
	if !namePattern.MatchString(d.Name) {
		return nil, bad("name %q: use lower-case letters, digits, '.', '_', '-'", d.Name)
	}
	switch d.Builder {
	case "busybox-static":
	case "debootstrap":
		if d.Suite == "" {
			d.Suite = "bookworm"
		}
		for _, p := range d.Packages {
			if !pkgPattern.MatchString(p) {
				return nil, bad("package %q is not a Debian package name", p)
			}
		}
	default:
		return nil, bad("builder %q: use busybox-static or debootstrap", d.Builder)
	}
	return &d, nil
}

// key is the cache key: the definition, the builder version and, for
// busybox, the busybox binary.
func (d *Definition) key() (string, error) {
	h := sha256.New()
	h.Write([]byte(builderVersion + "\x00"))
	h.Write(d.raw)
	if d.Builder == "busybox-static" {
		f, err := os.Open(busyboxPath)
		if err != nil {
			return "", fmt.Errorf("%s: %v (install Debian's busybox-static): %w", busyboxPath, err, ErrBuild)
		}
		defer f.Close()
		io.Copy(h, f)
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

const busyboxPath = "/bin/busybox"

// Built is a built image tarball.
type Built struct {
	Name    string `json:"name"`
	Tarball string `json:"tarball"`
	Digest  string `json:"digest"` // manifest digest
	Cached  bool   `json:"cached"`
}

// Build builds the image (or finds it in cacheDir) and returns its OCI
// tarball.
func Build(ctx context.Context, d *Definition, cacheDir string, log *slog.Logger) (*Built, error) {
	key, err := d.key()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(cacheDir, d.Name+"-"+key)
	meta := base + ".json"
	var b Built
	if data, err := os.ReadFile(meta); err == nil && json.Unmarshal(data, &b) == nil {
		if _, err := os.Stat(b.Tarball); err == nil {
			b.Cached = true
			return &b, nil
		}
	}
	work, err := os.MkdirTemp(cacheDir, ".build-"+d.Name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rootfs := filepath.Join(work, "rootfs")
	start := time.Now()
	log.Info("building rootfs", "image", d.Name, "builder", d.Builder)
	switch d.Builder {
	case "busybox-static":
		err = busyboxRootfs(rootfs)
	case "debootstrap":
		err = debootstrapRootfs(ctx, d, rootfs, log)
	}
	if err != nil {
		return nil, err
	}
	if err := jobDirs(rootfs); err != nil {
		return nil, err
	}
	if err := neutralEtc(rootfs); err != nil {
		return nil, err
	}
	layerTar := filepath.Join(work, "layer.tar")
	if out, err := exec.CommandContext(ctx, "tar", "--numeric-owner", "--one-file-system", "-C", rootfs, "-cf", layerTar, ".").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tar rootfs: %v: %s: %w", err, out, ErrBuild)
	}
	img, err := image(d, layerTar)
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	tarPath := base + ".oci.tar"
	if err := writeOCITar(img, d.Name, filepath.Join(work, "layout"), tarPath); err != nil {
		return nil, err
	}
	b = Built{Name: d.Name, Tarball: tarPath, Digest: digest.String()}
	data, _ := json.MarshalIndent(b, "", "  ")
	if err := atomicfile.WriteFile(meta, data, 0o644); err != nil {
		return nil, err
	}
	log.Info("built", "image", d.Name, "digest", b.Digest, "seconds", time.Since(start).Round(time.Second).Seconds())
	return &b, nil
}

func image(d *Definition, layerTar string) (v1.Image, error) {
	layer, err := tarball.LayerFromFile(layerTar)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = d.Cmd
	cf.Config.Entrypoint = d.Entry
	cf.Config.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, d.Env...)
	cf.Config.User = "65534:65534"
	cf.Config.WorkingDir = d.Workdir
	cf.Config.Labels = map[string]string{"org.opencontainers.image.title": d.Name, "io.sluice.builder": d.Builder}
	return mutate.ConfigFile(img, cf)
}

// writeOCITar writes img as an OCI layout annotated with its name for
// containerd, then tars the layout.
func writeOCITar(img v1.Image, name, dir, dst string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": "latest",
	})); err != nil {
		return err
	}
	return atomicfile.Write(dst, 0o644, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			if rel == "." {
				return nil
			}
			h, err := tar.FileInfoHeader(fi, "")
			if err != nil {
				return err
			}
			h.Name = filepath.ToSlash(rel)
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				src, err := os.Open(path)
				if err != nil {
					return err
				}
				defer src.Close()
				_, err = io.Copy(tw, src)
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tw.Close()
	})
}

// busyboxRootfs lays out Debian's static busybox with its applets.
func busyboxRootfs(root string) error {
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return err
	}
	src, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("%s: %v (install busybox-static): %w", busyboxPath, err, ErrBuild)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), src, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %v: %w", err, ErrBuild)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// debootstrapRootfs builds a Debian minbase root with the packages.
func debootstrapRootfs(ctx context.Context, d *Definition, root string, log *slog.Logger) error {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("debootstrap is not installed (apt-get install debootstrap): %w", ErrBuild)
	}
	mirror := d.Mirror
	if mirror == "" {
		mirror = os.Getenv("SLUICE_DEBIAN_MIRROR")
	}
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	args := []string{"--variant=minbase"}
	if len(d.Packages) > 0 {
		args = append(args, "--include="+strings.Join(d.Packages, ","))
	}
	args = append(args, d.Suite, root, mirror)
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	log.Info("running debootstrap (a few minutes)", "suite", d.Suite, "packages", len(d.Packages))
	if err := cmd.Run(); err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("debootstrap: %v: %s: %w", err, tail, ErrBuild)
	}
	// What a job never needs: package caches, docs, manuals, locales.
	for _, p := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/log"} {
		full := filepath.Join(root, p)
		entries, _ := os.ReadDir(full)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(full, e.Name()))
		}
	}
	return nil
}

// jobDirs creates the mount points a job needs: the root is read-only at
// run time, so they must exist in the image.
func jobDirs(root string) error {
	for _, d := range append([]string{"etc"}, MountPoints...) {
		mode := os.FileMode(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, mode); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	return nil
}

// neutralEtc replaces what a build copies from the build host — its name,
// its hosts file, its resolver — with files that say nothing about it. A
// job has no network: the resolver is empty.
func neutralEtc(root string) error {
	files := map[string]string{
		"hostname":    "sandbox\n",
		"hosts":       "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"resolv.conf": "",
	}
	for name, content := range files {
		p := filepath.Join(root, "etc", name)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Imported is an image in containerd.
type Imported struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size,omitempty"`
}

// Import loads an OCI (or Docker) image tarball into containerd and unpacks
// it. When the tarball carries no name, name is used.
func Import(ctx context.Context, client *containerd.Client, tarPath, name, snapshotter string) ([]Imported, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opts := []containerd.ImportOpt{containerd.WithAllPlatforms(false)}
	if name != "" {
		opts = append(opts, containerd.WithImageRefTranslator(func(ref string) string {
			if ref == "" {
				return name
			}
			return ref
		}))
	}
	imgs, err := client.Import(ctx, f, opts...)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", tarPath, err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("import %s: the tarball names no image (pass a name): %w", tarPath, ErrInvalidImage)
	}
	var out []Imported
	for _, i := range imgs {
		img := containerd.NewImage(client, i)
		err := img.Unpack(ctx, snapshotter)
		if err != nil {
			err = fmt.Errorf("unpack %s: %w", i.Name, err)
		} else {
			err = checkMountPoints(ctx, client, img, snapshotter)
		}
		if err != nil {
			// Nothing of a refused tarball stays imported.
			for _, i := range imgs {
				client.ImageService().Delete(ctx, i.Name)
			}
			return nil, fmt.Errorf("import %s: %w", tarPath, err)
		}
		out = append(out, Imported{Name: i.Name, Digest: i.Target.Digest.String()})
	}
	return out, nil
}

// MountPoints are the directories a job image must contain: the job's root
// is read-only, and these are where the sandbox mounts its inputs, output,
// code and scratch space, and the kernel file systems.
var MountPoints = []string{"data/in", "data/out", "code", "tmp", "run", "proc", "sys", "dev"}

// checkMountPoints mounts a read-only view of the unpacked image and
// refuses it unless every mount point is a real directory (a symlink could
// point a mount elsewhere in the image).
func checkMountPoints(ctx context.Context, client *containerd.Client, img containerd.Image, snapshotter string) error {
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return err
	}
	sn := client.SnapshotService(snapshotter)
	key := fmt.Sprintf("sluice-check-%s-%d", img.Target().Digest.Encoded()[:12], time.Now().UnixNano())
	mounts, err := sn.View(ctx, key, identity.ChainID(diffIDs).String())
	if err != nil {
		return fmt.Errorf("view %s: %w", img.Name(), err)
	}
	defer sn.Remove(context.WithoutCancel(ctx), key)
	var missing []string
	err = mount.WithReadonlyTempMount(ctx, mounts, func(root string) error {
		for _, d := range MountPoints {
			if fi, err := os.Lstat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
				missing = append(missing, "/"+d)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mount %s: %w", img.Name(), err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("image %s lacks the mount points %s (directories, not symlinks; the job root is read-only): %w",
			img.Name(), strings.Join(missing, ", "), ErrInvalidImage)
	}
	return nil
}

// List returns the images in containerd's namespace.
func List(ctx context.Context, client *containerd.Client) ([]Imported, error) {
	imgs, err := client.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	var out []Imported
	for _, i := range imgs {
		size, _ := i.Size(ctx)
		out = append(out, Imported{Name: i.Name(), Digest: i.Target().Digest.String(), Size: size})
	}
	return out, nil
}

// Ensure builds the image defined in dir if needed and imports it unless
// containerd already holds it with the same digest.
func Ensure(ctx context.Context, client *containerd.Client, dir, cacheDir, snapshotter string, log *slog.Logger) (*Built, error) {
	d, err := Load(dir)
	if err != nil {
		return nil, err
	}
	b, err := Build(ctx, d, cacheDir, log)
	if err != nil {
		return nil, err
	}
	if img, err := client.GetImage(ctx, d.Name); err == nil && img.Target().Digest.String() == b.Digest {
		if ok, _ := img.IsUnpacked(ctx, snapshotter); ok {
			return b, nil
		}
	} else if err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	if _, err := Import(ctx, client, b.Tarball, d.Name, snapshotter); err != nil {
		return nil, err
	}
	return b, nil
}
