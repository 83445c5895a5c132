package dataset

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
)

// validateRecord checks that every column's buffers hold what the batch
// declares. The Arrow IPC readers take buffer lengths and offsets from the
// file as they are; reading a value past them panics, and consumers read
// values in goroutines of their own, where a panic cannot be recovered. So
// a batch read from an IPC file is checked once, here, before anyone reads
// a value of it; so is one pqarrow decoded from Parquet pages, as a second
// line behind the page-header guard.
func validateRecord(rec arrow.Record) error {
	if rec.NumCols() == 0 && rec.NumRows() != 0 {
		return fmt.Errorf("the batch declares %d rows and has no columns", rec.NumRows())
	}
	for i, c := range rec.Columns() {
		if c.Len() != int(rec.NumRows()) {
			return fmt.Errorf("column %q has %d values in a batch of %d rows", rec.ColumnName(i), c.Len(), rec.NumRows())
		}
		if err := validateData(c.Data(), 0); err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
		}
	}
	return nil
}

func validateData(d arrow.ArrayData, depth int) error {
	if depth > maxSchemaDepth {
		return fmt.Errorf("nested too deeply")
	}
	off, n := d.Offset(), d.Len()
	if off < 0 || n < 0 {
		return fmt.Errorf("negative offset or length")
	}
	end := int64(off) + int64(n)
	bufs := d.Buffers()
	buf := func(i int) []byte {
		if i < len(bufs) && bufs[i] != nil {
			return bufs[i].Bytes()
		}
		return nil
	}
	if d.DataType().ID() == arrow.NULL {
		return nil
	}
	if v := buf(0); v != nil && int64(len(v))*8 < end {
		return fmt.Errorf("validity bitmap of %d bytes for %d values", len(v), end)
	} else if v == nil && d.NullN() != 0 {
		return fmt.Errorf("%d nulls declared without a validity bitmap", d.NullN())
	}
	switch t := d.DataType().(type) {
	case *arrow.StringType, *arrow.BinaryType:
		return validateOffsets(buf(1), buf(2), off, n, 4)
	case *arrow.LargeStringType, *arrow.LargeBinaryType:
		return validateOffsets(buf(1), buf(2), off, n, 8)
	case *arrow.DictionaryType:
		if err := validateFixed(buf(1), end, t.IndexType.(arrow.FixedWidthDataType).BitWidth()); err != nil {
			return err
		}
		if d.Dictionary() == nil {
			return fmt.Errorf("dictionary column without a dictionary")
		}
		return validateData(d.Dictionary(), depth+1)
	case arrow.FixedWidthDataType:
		return validateFixed(buf(1), end, t.BitWidth())
	}
	return fmt.Errorf("type %s is not supported", d.DataType())
}

func validateFixed(data []byte, end int64, bits int) error {
	if int64(len(data))*8 < end*int64(bits) {
		return fmt.Errorf("%d bytes of data for %d values of %d bits", len(data), end, bits)
	}
	return nil
}

// validateOffsets checks a (large) string or binary column: offsets for
// values [off, off+n] present, non-decreasing, within the data buffer.
func validateOffsets(offsets, data []byte, off, n, width int) error {
	if int64(len(offsets)) < (int64(off)+int64(n)+1)*int64(width) {
		return fmt.Errorf("%d bytes of offsets for %d values", len(offsets), off+n)
	}
	at := func(i int) int64 {
		if width == 4 {
			return int64(int32(binary.LittleEndian.Uint32(offsets[i*4:])))
		}
		return int64(binary.LittleEndian.Uint64(offsets[i*8:]))
	}
	prev := at(off)
	if prev < 0 {
		return fmt.Errorf("negative value offset")
	}
	for i := off + 1; i <= off+n; i++ {
		o := at(i)
		if o < prev {
			return fmt.Errorf("value offsets decrease at %d", i)
		}
		prev = o
	}
	if prev > int64(len(data)) {
		return fmt.Errorf("value offsets reach byte %d of %d", prev, len(data))
	}
	return nil
}
