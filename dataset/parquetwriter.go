package dataset

import (
	"context"
	"encoding/base64"
	"io"
	"runtime"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/flight"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"golang.org/x/sync/errgroup"
)

// parquetEncoder writes record batches as Parquet row groups (snappy), the
// Arrow schema stored in the footer as pqarrow stores it. Each batch is one
// buffered row group whose columns are encoded and compressed in parallel:
// every column chunk has its own writer and page buffer, so they share
// nothing until the row group is closed, in column order. (pqarrow's
// FileWriter encodes one column after another.) Columns are flat: Sluice
// refuses nested types on read.
//
// Dictionary encoding is chosen per column from the first batch: a text or
// binary column whose sampled values are mostly distinct (identifiers,
// pseudonyms, names) is written plain, since its dictionary would only be
// built to be abandoned — on a 1M-row masking that was most of the
// writer's time.
type parquetEncoder struct {
	out     io.Writer
	w       *file.Writer // made at the first batch
	schema  *arrow.Schema
	props   pqarrow.ArrowWriterProperties
	workers int
}

func newParquetEncoder(out io.Writer, schema *arrow.Schema) (*parquetEncoder, error) {
	p := &parquetEncoder{out: out, schema: schema, props: pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()), workers: runtime.GOMAXPROCS(0)}
	// The schema converts now, so that an unwritable one fails at Create.
	_, err := pqarrow.ToParquet(schema, parquet.NewWriterProperties(), p.props)
	return p, err
}

// open makes the file writer, the dictionary choices taken from first.
func (p *parquetEncoder) open(first arrow.Record) error {
	opts := []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(true)}
	if first != nil {
		for i, f := range p.schema.Fields() {
			if mostlyDistinct(first.Column(i)) {
				opts = append(opts, parquet.WithDictionaryFor(f.Name, false))
			}
		}
	}
	props := parquet.NewWriterProperties(opts...)
	pqschema, err := pqarrow.ToParquet(p.schema, props, p.props)
	if err != nil {
		return err
	}
	meta := make(metadata.KeyValueMetadata, 0)
	for i, k := range p.schema.Metadata().Keys() {
		meta.Append(k, p.schema.Metadata().Values()[i])
	}
	meta.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(p.schema, memory.DefaultAllocator)))
	p.w = file.NewParquetWriter(p.out, pqschema.Root(), file.WithWriterProps(props), file.WithWriteMetadata(meta))
	return nil
}

// mostlyDistinct reports whether more than half of the first values of a
// text or binary column are distinct.
func mostlyDistinct(col arrow.Array) bool {
	type texts interface {
		arrow.Array
		ValueStr(int) string
	}
	switch col.DataType().ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
	default:
		return false
	}
	a, ok := col.(texts)
	if !ok {
		return false
	}
	n := min(a.Len(), 4096)
	seen := make(map[string]struct{}, n)
	valid := 0
	for i := range n {
		if a.IsValid(i) {
			valid++
			seen[a.ValueStr(i)] = struct{}{}
		}
	}
	return valid > 0 && len(seen)*2 > valid
}

// Write writes one batch as a row group.
func (p *parquetEncoder) Write(rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if p.w == nil {
		if err := p.open(rec); err != nil {
			return err
		}
	}
	rgw := p.w.AppendBufferedRowGroup()
	var g errgroup.Group
	g.SetLimit(p.workers)
	for i := range int(rec.NumCols()) {
		col, nullable := rec.Column(i), p.schema.Field(i).Nullable
		g.Go(func() error {
			cw, err := rgw.Column(i)
			if err != nil {
				return err
			}
			var def []int16
			if nullable {
				def = make([]int16, col.Len())
				for j := range def {
					if col.IsValid(j) {
						def[j] = 1
					}
				}
			}
			// A write context of its own: it holds scratch buffers.
			ctx := pqarrow.NewArrowWriteContext(context.Background(), &p.props)
			return pqarrow.WriteArrowToColumn(ctx, cw, col, def, nil, nullable)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return rgw.Close()
}

// Close writes the footer (of a file with no row group when no batch had
// rows).
func (p *parquetEncoder) Close() error {
	if p.w == nil {
		if err := p.open(nil); err != nil {
			return err
		}
	}
	return p.w.Close()
}
