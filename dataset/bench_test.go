package dataset_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/demodata"
)

// BenchmarkInspect profiles 100,000 synthetic residents from CSV; rows/s is
// reported.
func BenchmarkInspect(b *testing.B) {
	const rows = 100000
	dir := b.TempDir()
	ctx := context.Background()
	if err := demodata.Write(ctx, dir, rows, 1, dataset.CSV); err != nil {
		b.Fatal(err)
	}
	src, _ := demodata.Files(dir, dataset.CSV)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := dataset.Inspect(ctx, src, dataset.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
