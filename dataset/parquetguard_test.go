package dataset_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// TestParquetLayouts writes the same nullable table with the layouts other
// writers produce — several codecs, dictionary on and off, data page v1 and
// v2, many small pages and row groups — and reads each back whole: the
// metadata guard must not refuse a well-formed file.
func TestParquetLayouts(t *testing.T) {
	const n = 5000
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "district", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "income", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	var want [][]string
	for i := 0; i < n; i++ {
		row := []string{fmt.Sprintf("区%d", i%37), fmt.Sprint(i * 7), fmt.Sprint(i%3 == 0), fmt.Sprint(float64(i) / 4)}
		if i%11 == 0 {
			b.Field(0).AppendNull()
			row[0] = "<null>"
		} else {
			b.Field(0).(*array.StringBuilder).Append(row[0])
		}
		if i%13 == 0 {
			b.Field(1).AppendNull()
			row[1] = "<null>"
		} else {
			b.Field(1).(*array.Int64Builder).Append(int64(i * 7))
		}
		b.Field(2).(*array.BooleanBuilder).Append(i%3 == 0)
		b.Field(3).(*array.Float64Builder).Append(float64(i) / 4)
		want = append(want, row)
	}
	rec := b.NewRecord()
	defer rec.Release()

	layouts := map[string][]parquet.WriterProperty{
		"plain-uncompressed": {parquet.WithDictionaryDefault(false), parquet.WithCompression(compress.Codecs.Uncompressed)},
		"dict-snappy":        {parquet.WithDictionaryDefault(true), parquet.WithCompression(compress.Codecs.Snappy)},
		"dict-zstd-v2":       {parquet.WithDictionaryDefault(true), parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDataPageVersion(parquet.DataPageV2)},
		"gzip-v2-plain":      {parquet.WithDictionaryDefault(false), parquet.WithCompression(compress.Codecs.Gzip), parquet.WithDataPageVersion(parquet.DataPageV2)},
		"small-pages":        {parquet.WithDictionaryDefault(true), parquet.WithDataPageSize(512), parquet.WithMaxRowGroupLength(700), parquet.WithBatchSize(100)},
	}
	for name, props := range layouts {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), name+".parquet")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(props...), pqarrow.DefaultWriterProps())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, got := readAll(t, p)
			if len(got) != n {
				t.Fatalf("%d rows, want %d", len(got), n)
			}
			for i := range want {
				if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
					t.Fatalf("row %d: got %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}
