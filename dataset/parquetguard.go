package dataset

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/apache/thrift/lib/go/thrift"
)

// checkParquet refuses Parquet metadata that points outside the file or
// declares more than its bytes can hold. The pqarrow column readers are
// created in goroutines of their own, where a panic cannot be recovered,
// and its page reader sizes buffers by declared counts before reading a
// value (and keeps every skipped page's buffer until it returns): any of
// these takes the whole process down on a corrupt or hostile file, so the
// footer, the Arrow schema it may carry and every page header are checked
// first. Only headers are read — no page is decompressed — so the check
// costs a seek per page.
func checkParquet(pf *file.Reader, r io.ReaderAt, size int64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("unreadable metadata: %v", p)
		}
	}()
	md := pf.MetaData()
	if err := checkArrowSchemaMeta(md.KeyValueMetadata().FindValue("ARROW:schema")); err != nil {
		return err
	}
	if md.NumRows < 0 {
		return fmt.Errorf("the footer declares %d rows", md.NumRows)
	}
	oldWriter := md.WriterVersion().LessThan(metadata.Parquet816FixedVersion)
	limit := int64(allocLimit(size))
	for g := 0; g < pf.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		if rg.NumRows() < 0 {
			return fmt.Errorf("row group %d declares %d rows", g, rg.NumRows())
		}
		for c := 0; c < rg.NumColumns(); c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				return fmt.Errorf("row group %d column %d: %w", g, c, err)
			}
			if cc.CryptoMetadata() != nil {
				return fmt.Errorf("row group %d column %d is encrypted", g, c)
			}
			// The chunk's extent, computed as file.RowGroupReader does.
			start, n := cc.DataPageOffset(), cc.TotalCompressedSize()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && start > cc.DictionaryPageOffset() {
				start = cc.DictionaryPageOffset()
			}
			if start < 0 || n < 0 || start > size || n > size-start {
				return fmt.Errorf("row group %d column %d spans %d bytes at offset %d, outside the %d-byte file", g, c, n, start, size)
			}
			if oldWriter { // PARQUET-816 padding
				n += min(100, size-start-n)
			}
			if cc.NumValues() < 0 || cc.TotalUncompressedSize() < 0 {
				return fmt.Errorf("row group %d column %d declares negative sizes", g, c)
			}
			if err := checkPages(r, start, start+n, cc.NumValues(), limit); err != nil {
				return fmt.Errorf("row group %d column %d: %w", g, c, err)
			}
		}
	}
	return nil
}

// checkArrowSchemaMeta checks the Arrow schema a Parquet file may carry
// (pqarrow parses it with the same unguarded code as IPC metadata), decoded
// exactly as pqarrow's getOriginSchema does, so the bytes checked are the
// bytes it will parse.
func checkArrowSchemaMeta(v *string) error {
	if v == nil {
		return nil
	}
	var raw []byte
	var err error
	if len(*v)%4 == 0 {
		raw, err = base64.StdEncoding.DecodeString(*v)
	}
	if len(raw) == 0 || err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(*v)
	}
	if err == nil {
		err = checkSchemaMessage(raw, int64(len(raw)))
	}
	if err != nil {
		return fmt.Errorf("the Arrow schema it carries: %w", err)
	}
	return nil
}

// Parquet page types (parquet.thrift PageType).
const (
	pageData       = 0
	pageDictionary = 2
	pageDataV2     = 3
)

// pageHeader holds the fields of a parquet.thrift PageHeader that decide
// how much the reader allocates.
type pageHeader struct {
	typ, uncompressed, compressed int32
	numValues                     int32 // of the data or dictionary sub-header
	defLevels, repLevels          int32 // DataPageHeaderV2 only
}

// checkPages walks the page headers of one column chunk, [pos, end), the way
// the page reader will: until nvals values have been seen or the bytes end.
func checkPages(r io.ReaderAt, pos, end, nvals, limit int64) error {
	const window, maxHeader = 16 << 10, 16 << 20 // as the page reader
	buf := make([]byte, window)
	for seen := int64(0); seen < nvals && pos < end; {
		var h pageHeader
		var hlen int
		for w := int64(window); ; w *= 2 {
			w = min(w, end-pos)
			if int64(len(buf)) < w {
				buf = make([]byte, w)
			}
			if _, err := r.ReadAt(buf[:w], pos); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			var err error
			if h, hlen, err = readPageHeader(buf[:w]); err == nil {
				break
			}
			if w >= end-pos || w >= maxHeader {
				return fmt.Errorf("unreadable page header at offset %d", pos)
			}
		}
		if h.compressed < 0 || h.uncompressed < 0 || int64(h.uncompressed) > limit {
			return fmt.Errorf("page at offset %d declares sizes %d/%d", pos, h.compressed, h.uncompressed)
		}
		if h.numValues < 0 {
			return fmt.Errorf("page at offset %d declares %d values", pos, h.numValues)
		}
		switch h.typ {
		case pageDictionary:
			// A plain-encoded value takes at least one bit.
			if int64(h.numValues) > 8*int64(h.uncompressed) {
				return fmt.Errorf("dictionary page at offset %d declares %d values in %d bytes", pos, h.numValues, h.uncompressed)
			}
		case pageData:
			seen += int64(h.numValues)
		case pageDataV2:
			lv := int64(h.defLevels) + int64(h.repLevels)
			if h.defLevels < 0 || h.repLevels < 0 || lv > int64(h.uncompressed) || lv > int64(h.compressed) {
				return fmt.Errorf("page at offset %d declares %d bytes of levels", pos, lv)
			}
			seen += int64(h.numValues)
		default:
			return fmt.Errorf("page at offset %d has unsupported type %d", pos, h.typ)
		}
		pos += int64(hlen) + int64(h.compressed)
		if pos > end {
			return fmt.Errorf("a page runs past the end of its column chunk")
		}
	}
	return nil
}

// readPageHeader decodes the Thrift compact-protocol PageHeader at the start
// of b and returns it with its length in bytes.
func readPageHeader(b []byte) (h pageHeader, n int, err error) {
	ctx := context.Background()
	mb := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(b)}
	p := thrift.NewTCompactProtocolConf(mb, &thrift.TConfiguration{})
	err = readStruct(ctx, p, func(id int16, t thrift.TType) (bool, error) {
		switch {
		case t == thrift.I32 && id == 1:
			v, err := p.ReadI32(ctx)
			h.typ = v
			return true, err
		case t == thrift.I32 && id == 2:
			v, err := p.ReadI32(ctx)
			h.uncompressed = v
			return true, err
		case t == thrift.I32 && id == 3:
			v, err := p.ReadI32(ctx)
			h.compressed = v
			return true, err
		case t == thrift.STRUCT && (id == 5 || id == 7 || id == 8):
			return true, readStruct(ctx, p, func(sid int16, st thrift.TType) (bool, error) {
				if st != thrift.I32 {
					return false, nil
				}
				var dst *int32
				switch {
				case sid == 1:
					dst = &h.numValues
				case id == 8 && sid == 5:
					dst = &h.defLevels
				case id == 8 && sid == 6:
					dst = &h.repLevels
				default:
					return false, nil
				}
				v, err := p.ReadI32(ctx)
				*dst = v
				return true, err
			})
		}
		return false, nil
	})
	return h, len(b) - int(mb.RemainingBytes()), err
}

// readStruct reads one Thrift struct, calling field for each field; fields
// it does not read (false) are skipped.
func readStruct(ctx context.Context, p thrift.TProtocol, field func(int16, thrift.TType) (bool, error)) error {
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return err
	}
	for {
		_, t, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return err
		}
		if t == thrift.STOP {
			break
		}
		read, err := field(id, t)
		if err != nil {
			return err
		}
		if !read {
			if err := thrift.SkipDefaultDepth(ctx, p, t); err != nil {
				return err
			}
		}
		if err := p.ReadFieldEnd(ctx); err != nil {
			return err
		}
	}
	return p.ReadStructEnd(ctx)
}
