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
	src := residents(b, rows, dataset.CSV)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := dataset.Inspect(context.Background(), src, dataset.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// residents writes synthetic residents in the format once per benchmark.
func residents(b *testing.B, rows int, format dataset.Format) string {
	b.Helper()
	dir := b.TempDir()
	if err := demodata.Write(context.Background(), dir, rows, 1, format); err != nil {
		b.Fatal(err)
	}
	src, _ := demodata.Files(dir, format)
	return src
}

// BenchmarkOpenParquet opens and closes a 200,000-row Parquet file: the
// footer, the metadata and page-header guard, the pqarrow reader set-up.
// Compare with BenchmarkReadParquet for the guard's share of a read.
func BenchmarkOpenParquet(b *testing.B) {
	src := residents(b, 200000, dataset.Parquet)
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
	src := residents(b, 200000, dataset.Parquet)
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
