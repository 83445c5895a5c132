package images_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

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
	addr := os.Getenv("SLUICE_CONTAINERD_ADDRESS")
	if addr == "" {
		addr = "/run/containerd/containerd.sock"
	}
	client, err := containerd.New(addr)
	if err != nil {
		t.Fatalf("containerd is required (make test starts it): %v", err)
	}
	defer client.Close()
	nctx := namespaces.WithNamespace(ctx, "sluice-test-images")
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
