package policy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/policy"
)

// BenchmarkDecide measures one policy decision on a typical input (a dozen
// findings), reporting the p50 and p99 latency of the evaluations.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	e, err := policy.Default(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var findings []any
	for i, d := range []string{"group_size", "small_cell", "zero_cell", "row_level", "k_anonymity", "l_diversity", "extreme", "differencing", "file_type", "raw_value", "group_size", "small_cell"} {
		findings = append(findings, map[string]any{"detector": d, "severity": "info", "value": float64(10 + i), "count": 1, "kind": "table", "message": fmt.Sprintf("finding %d", i)})
	}
	input := map[string]any{"product": map[string]any{"kind": "table", "size": 1000, "rows": 10}, "findings": findings}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		if _, err := e.Decide(ctx, input); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
