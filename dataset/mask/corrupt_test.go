package mask_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/internal/corrupt"
)

// TestCorruptSources masks byte-flipped variants of small Arrow and Parquet
// sources: each must mask or fail with an error — never crash the process
// (the masking workers run in goroutines of their own) — and a failure
// leaves no output file.
func TestCorruptSources(t *testing.T) {
	dir := t.TempDir()
	opts := defaultOpts(t, "dev")
	// A small slice of the corpus source, as each binary format.
	head := filepath.Join(dir, "head.csv")
	b, err := os.ReadFile(corpusSource)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for i, c := range b {
		if c == '\n' {
			if lines++; lines == 40 {
				b = b[:i+1]
				break
			}
		}
	}
	os.WriteFile(head, b, 0o600)
	for _, ext := range []string{"arrow", "arrows", "parquet"} {
		src := filepath.Join(dir, "head."+ext)
		if _, _, err := dataset.Convert(context.Background(), head, dataset.Options{}, src); err != nil {
			t.Fatal(err)
		}
		corrupt.Variants(t, src, dir, 3, 300, func(i int, p string) {
			out := filepath.Join(dir, fmt.Sprintf("out%d.arrow", i))
			if _, err := mask.File(context.Background(), p, out, opts); err != nil {
				if _, serr := os.Stat(out); serr == nil {
					t.Fatalf("%s variant %d failed (%v) but left %s", ext, i, err, out)
				}
			}
			os.Remove(out)
		})
	}
}
