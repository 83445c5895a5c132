package audit

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAppend: one record appended (synced: synchronous=FULL).
func BenchmarkAppend(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	l, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"), priv)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for b.Loop() {
		if _, err := l.Append(context.Background(), Record{Actor: "usr-1", Action: "read", Resource: "ds-1", Result: "ok"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordsSince: the last records of a 10,000-record trail, as GET
// /api/v1/audit?since= reads them (every record is read and decoded to
// filter by time).
func BenchmarkRecordsSince(b *testing.B) {
	const n = 10000
	_, priv, _ := ed25519.GenerateKey(nil)
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(b.TempDir(), "audit.db"), priv)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := l.db.ExecContext(ctx, `PRAGMA synchronous=OFF`); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := l.Append(ctx, Record{Time: t0.Add(time.Duration(i) * time.Second), Actor: "usr-1", Action: "read", Resource: "ds-1", Result: "ok"}); err != nil {
			b.Fatal(err)
		}
	}
	since := t0.Add((n - 100) * time.Second)
	for b.Loop() {
		recs, err := l.Records(ctx, since, 1000)
		if err != nil || len(recs) != 100 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
	}
}

// BenchmarkAppendParallel: appends from many callers at once, as a busy
// server makes them (they are written in batches, one sync each).
func BenchmarkAppendParallel(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	l, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"), priv)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), Record{Actor: "usr-1", Action: "read", Resource: "ds-1", Result: "ok"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
