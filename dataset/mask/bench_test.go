package mask_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/demodata"
	"github.com/sluicehq/sluice/dataset/mask"
)

// BenchmarkMaskFile masks 100,000 synthetic residents (CSV in, Arrow out)
// with the prod profile; rows/s is reported.
func BenchmarkMaskFile(b *testing.B) { benchmarkMask(b, "out.arrow") }

// BenchmarkMaskToParquet is the same, written as Parquet.
func BenchmarkMaskToParquet(b *testing.B) { benchmarkMask(b, "out.parquet") }

func benchmarkMask(b *testing.B, output string) {
	const rows = 100000
	dir := b.TempDir()
	ctx := context.Background()
	if err := demodata.Write(ctx, dir, rows, 1, dataset.CSV); err != nil {
		b.Fatal(err)
	}
	src, _ := demodata.Files(dir, dataset.CSV)
	prof, err := dataset.Inspect(ctx, src, dataset.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p, _ := mask.Builtin("prod")
	key, _ := mask.NewKey()
	opts := mask.Options{Profile: p, Classes: dataset.Classify(prof).Classes, Key: key}
	out := filepath.Join(dir, output)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := mask.File(ctx, src, out, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
