package storage

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/dataset"
)

// TestDatasetFromSealedObject: a dataset is read from its sealed object —
// CSV, Parquet and Arrow IPC, the last two at offsets — with the rows it
// has in the plaintext file, and nothing decrypted is written.
func TestDatasetFromSealedObject(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := "../../shared/egress-corpus/sources/residents.csv"
	s, _ := NewLocal(filepath.Join(dir, "objects"))
	key := NewDataKey()
	for _, ext := range []string{"csv", "parquet", "arrow"} {
		plain := filepath.Join(dir, "residents."+ext)
		if ext == "csv" {
			plain = src
		} else if _, _, err := dataset.Convert(ctx, src, dataset.Options{}, plain); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(plain)
		name := "datasets/residents/" + ext
		if err := PutSealed(ctx, s, name, key, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		open := Opener(ctx, s, key)
		var rows int64
		opts := dataset.Options{Open: func(n string) (dataset.File, int64, error) {
			o, size, err := open(n)
			return o, size, err
		}}
		// These names carry no extension: Parquet and Arrow are known by their
		// magic bytes, read through the decryption; the rest is CSV.
		err := dataset.Stream(ctx, name, opts, func(r dataset.Reader, format dataset.Format) error {
			for r.Next() {
				rows += r.Record().NumRows()
			}
			return r.Err()
		})
		if err != nil {
			t.Fatalf("%s: %v", ext, err)
		}
		if rows != 6000 {
			t.Errorf("%s: %d rows from the sealed object, want 6000", ext, rows)
		}
	}
}
