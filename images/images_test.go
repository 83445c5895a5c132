package images_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sluicehq/sluice/images"
)

func TestLoadRejectsBadDefinitions(t *testing.T) {
	tests := map[string]string{
		"name: Bad Name\nbuilder: busybox-static\n":                       "name",
		"name: x\nbuilder: docker\n":                                      "builder",
		"name: x\nbuilder: debootstrap\npackages: [\"curl; rm -rf /\"]\n": "package",
		"name: x\nbuilder: busybox-static\nunknown: 1\n":                  "unknown",
	}
	for content, want := range tests {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "image.yaml"), []byte(content), 0o644)
		_, err := images.Load(dir)
		if !errors.Is(err, images.ErrInvalidDefinition) || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%q) = %v, want ErrInvalidDefinition about %q", content, err, want)
		}
	}
	for _, d := range []string{"busybox", "python"} {
		if _, err := images.Load(d); err != nil {
			t.Errorf("shipped definition %s: %v", d, err)
		}
	}
}

// testClient connects to the real containerd (make test starts it), in the
// test namespace for images.
func testClient(t *testing.T) (context.Context, *containerd.Client) {
	t.Helper()
	addr := os.Getenv("SLUICE_CONTAINERD_ADDRESS")
	if addr == "" {
		addr = "/run/containerd/containerd.sock"
	}
	client, err := containerd.New(addr)
	if err != nil {
		t.Fatalf("containerd is required (make test starts it): %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return namespaces.WithNamespace(context.Background(), "sluice-test-images"), client
}

// TestBuildCachesAndImports builds the busybox image twice (the second is a
// cache hit with the same digest) and imports it into containerd.
func TestBuildCachesAndImports(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cache := t.TempDir()
	d, err := images.Load("busybox")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := images.Build(ctx, d, cache, log)
	if err != nil {
		t.Fatal(err)
	}
	second, err := images.Build(ctx, d, cache, log)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || !second.Cached || first.Digest != second.Digest {
		t.Errorf("first %+v, second %+v: want a fresh build then a cache hit with the same digest", first, second)
	}
	nctx, client := testClient(t)
	imported, err := images.Import(nctx, client, first.Tarball, "", "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	if len(imported) != 1 || imported[0].Name != "busybox" || imported[0].Digest != first.Digest {
		t.Errorf("imported %+v, want busybox at %s", imported, first.Digest)
	}
	list, err := images.List(nctx, client)
	if err != nil || len(list) != 1 || list[0].Digest != first.Digest {
		t.Errorf("list: %+v, %v", list, err)
	}
	for _, i := range list {
		client.ImageService().Delete(nctx, i.Name)
	}
}

// TestImportRefusesImageWithoutMountPoints imports a tarball built
// elsewhere whose root lacks the job mount points (and has /data/out as a
// symlink): the import fails naming them, exit-2 class, and nothing of it
// stays in containerd.
func TestImportRefusesImageWithoutMountPoints(t *testing.T) {
	ctx, client := testClient(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "data/in/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "data/out", Typeflag: tar.TypeSymlink, Linkname: "/tmp"},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference("sluice-test-bare:latest")
	tarPath := filepath.Join(t.TempDir(), "bare.tar")
	if err := tarball.WriteToFile(tarPath, ref, img); err != nil {
		t.Fatal(err)
	}
	_, err = images.Import(ctx, client, tarPath, "", "overlayfs")
	if !errors.Is(err, images.ErrInvalidImage) {
		t.Fatalf("import = %v, want ErrInvalidImage", err)
	}
	for _, want := range []string{"/data/out", "/code", "/proc", "bare.tar"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "/data/in,") || strings.Contains(err.Error(), "/tmp,") {
		t.Errorf("error %q names a mount point the image has", err)
	}
	list, err := images.List(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range list {
		if strings.Contains(i.Name, "sluice-test-bare") {
			t.Errorf("refused image %s left in containerd", i.Name)
		}
	}
}
