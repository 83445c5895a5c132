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

// parquetBench writes 200,000 synthetic residents as Parquet once per
// benchmark.
func parquetBench(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if err := demodata.Write(context.Background(), dir, 200000, 1, dataset.Parquet); err != nil {
		b.Fatal(err)
	}
	src, _ := demodata.Files(dir, dataset.Parquet)
	return src
}

// BenchmarkOpenParquet opens and closes a 200,000-row Parquet file: the
// footer, the metadata and page-header guard, the pqarrow reader set-up.
// Compare with BenchmarkReadParquet for the guard's share of a read.
func BenchmarkOpenParquet(b *testing.B) {
	src := parquetBench(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, _, err := dataset.Open(context.Background(), src, dataset.Options{})
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// BenchmarkReadParquet streams every batch of the same file.
func BenchmarkReadParquet(b *testing.B) {
	src := parquetBench(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := dataset.Stream(context.Background(), src, dataset.Options{}, func(r dataset.Reader, _ dataset.Format) error {
			for r.Next() {
			}
			return r.Err()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(200000*b.N)/b.Elapsed().Seconds(), "rows/s")
}
