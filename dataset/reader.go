package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// DefaultBatchRows is the number of rows per record batch when reading.
const DefaultBatchRows = 32 * 1024

// Reader streams a dataset as Arrow record batches. A Record is valid until
// the next call to Next; Retain it to keep it longer.
type Reader interface {
	Schema() *arrow.Schema
	Next() bool
	Record() arrow.Record
	Err() error
	Close() error
}

// Options tune how a dataset is read.
type Options struct {
	BatchRows int              // rows per batch; DefaultBatchRows when 0
	Alloc     memory.Allocator // memory.DefaultAllocator when nil
	// Open opens the file named by a path; the local filesystem when nil.
	Open Opener
	// StringColumns forces these CSV columns to be read as strings instead of
	// the inferred type.
	StringColumns map[string]bool
	// SampleRows is how many leading CSV rows type inference looks at;
	// DefaultSampleRows when 0.
	SampleRows int
	// Progress, when set, is told the rows read so far after every batch
	// (by Inspect).
	Progress func(rows int64)
}

func (o Options) withDefaults() Options {
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.Alloc == nil {
		o.Alloc = memory.DefaultAllocator
	}
	if o.SampleRows <= 0 {
		o.SampleRows = DefaultSampleRows
	}
	return o
}

// Open opens a dataset file for streaming. The format is detected from the
// file's magic bytes and extension.
func Open(ctx context.Context, path string, opts Options) (Reader, Format, error) {
	format, size, err := detect(path, opts.opener())
	if err != nil {
		return nil, "", err
	}
	opts = opts.withDefaults()
	opts.Alloc = &boundedAllocator{Allocator: opts.Alloc, max: allocLimit(size)}
	var r Reader
	switch format {
	case CSV:
		r, err = openCSV(path, opts)
	case Parquet:
		r, err = openParquet(ctx, path, opts)
	case ArrowFile:
		r, err = openArrowFile(path, opts)
	case ArrowStream:
		r, err = openArrowStream(path, opts)
	}
	if err != nil {
		return nil, "", err
	}
	return r, format, nil
}

// Stream opens path and calls fn with a reader over it. When a CSV value late
// in the file does not fit the type inferred from the leading rows, the column
// is widened to a string and fn is called again from the start with a fresh
// reader, so fn must be restartable (for example, by rewriting its output).
func Stream(ctx context.Context, path string, opts Options, fn func(Reader, Format) error) error {
	forced := map[string]bool{}
	for k, v := range opts.StringColumns {
		forced[k] = v
	}
	for {
		opts.StringColumns = forced
		r, format, err := Open(ctx, path, opts)
		if err != nil {
			return err
		}
		err = fn(r, format)
		cerr := r.Close()
		var tc *TypeConflictError
		if errors.As(err, &tc) && tc.File == path && !forced[tc.Column] {
			forced[tc.Column] = true
			continue
		}
		if err != nil {
			return err
		}
		return cerr
	}
}

// recoverErr turns a panic inside a third-party decoder into an input error,
// so corrupt files never crash the process.
func recoverErr(path string, errp *error) {
	if p := recover(); p != nil {
		*errp = &InputError{File: path, Offset: -1, Msg: fmt.Sprintf("corrupt file: %v", p)}
	}
}

// ---- Parquet ----

type parquetReader struct {
	path string
	f    File
	pf   *file.Reader
	rr   pqarrow.RecordReader
	rec  arrow.Record
	err  error
}

func openParquet(ctx context.Context, path string, opts Options) (r Reader, err error) {
	defer recoverErr(path, &err)
	f, size, err := opts.opener()(path)
	if err != nil {
		return nil, openErr(path, err)
	}
	// Buffered streams read column chunks through a bounded buffer instead
	// of allocating each chunk whole.
	props := parquet.NewReaderProperties(opts.Alloc)
	props.BufferedStreamEnabled = true
	pf, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		f.Close()
		return nil, &InputError{File: path, Offset: -1, Msg: "not a valid Parquet file: " + err.Error()}
	}
	if err := checkParquet(pf, f, size); err != nil {
		pf.Close()
		return nil, &InputError{File: path, Offset: -1, Msg: "corrupt Parquet metadata: " + err.Error()}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(opts.BatchRows)}, opts.Alloc)
	if err != nil {
		pf.Close()
		return nil, &InputError{File: path, Offset: -1, Msg: "unsupported Parquet schema: " + err.Error()}
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		pf.Close()
		return nil, &InputError{File: path, Offset: -1, Msg: "cannot read Parquet: " + err.Error()}
	}
	return &parquetReader{path: path, f: f, pf: pf, rr: rr}, nil
}

func (p *parquetReader) Schema() *arrow.Schema { return p.rr.Schema() }
func (p *parquetReader) Record() arrow.Record  { return p.rec }
func (p *parquetReader) Err() error            { return p.err }

func (p *parquetReader) Next() (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			p.err = &InputError{File: p.path, Offset: -1, Msg: fmt.Sprintf("corrupt Parquet data: %v", r)}
			ok = false
		}
	}()
	if p.err != nil {
		return false
	}
	if p.rr.Next() {
		p.rec = p.rr.Record()
		if err := validateRecord(p.rec); err != nil {
			p.err = &InputError{File: p.path, Offset: -1, Msg: "corrupt Parquet data: " + err.Error()}
			p.rec = nil
			return false
		}
		return true
	}
	if err := p.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		p.err = &InputError{File: p.path, Offset: -1, Msg: "corrupt Parquet data: " + err.Error()}
	}
	p.rec = nil
	return false
}

func (p *parquetReader) Close() error {
	p.rr.Release()
	return p.pf.Close()
}

// ---- Arrow IPC file ----

type arrowFileReader struct {
	path string
	f    File
	r    *ipc.FileReader
	i    int
	rec  arrow.Record
	err  error
}

func openArrowFile(path string, opts Options) (r Reader, err error) {
	defer recoverErr(path, &err)
	if cerr := checkArrowFile(path, opts.opener()); cerr != nil {
		// A stream written with an .arrow name is still readable.
		if checkArrowStream(path, opts.opener()) == nil {
			return openArrowStream(path, opts)
		}
		return nil, &InputError{File: path, Offset: -1, Msg: "not a valid Arrow IPC file (truncated or corrupt): " + cerr.Error()}
	}
	f, _, err := opts.opener()(path)
	if err != nil {
		return nil, openErr(path, err)
	}
	fr, err := ipc.NewFileReader(f, ipc.WithAllocator(opts.Alloc))
	if err != nil {
		f.Close()
		// A stream written with an .arrow name is still readable.
		if _, serr := f.Seek(0, io.SeekStart); serr == nil {
			if sr, serr := openArrowStream(path, opts); serr == nil {
				return sr, nil
			}
		}
		return nil, &InputError{File: path, Offset: -1, Msg: "not a valid Arrow IPC file (truncated or corrupt): " + err.Error()}
	}
	return &arrowFileReader{path: path, f: f, r: fr}, nil
}

func (a *arrowFileReader) Schema() *arrow.Schema { return a.r.Schema() }
func (a *arrowFileReader) Record() arrow.Record  { return a.rec }
func (a *arrowFileReader) Err() error            { return a.err }

func (a *arrowFileReader) Next() (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			a.err = &InputError{File: a.path, Offset: -1, Msg: fmt.Sprintf("corrupt Arrow record batch %d: %v", a.i, r)}
			ok = false
		}
	}()
	if a.err != nil || a.i >= a.r.NumRecords() {
		return false
	}
	rec, err := a.r.Record(a.i)
	if err != nil {
		a.err = &InputError{File: a.path, Offset: -1, Msg: fmt.Sprintf("corrupt Arrow record batch %d: %v", a.i, err)}
		return false
	}
	if err := validateRecord(rec); err != nil {
		a.err = &InputError{File: a.path, Offset: -1, Msg: fmt.Sprintf("corrupt Arrow record batch %d: %v", a.i, err)}
		return false
	}
	a.i++
	a.rec = rec
	return true
}

func (a *arrowFileReader) Close() error {
	a.r.Close()
	return a.f.Close()
}

// ---- Arrow IPC stream ----

type arrowStreamReader struct {
	path string
	f    File
	r    *ipc.Reader
	n    int
	err  error
}

func openArrowStream(path string, opts Options) (r Reader, err error) {
	defer recoverErr(path, &err)
	if cerr := checkArrowStream(path, opts.opener()); cerr != nil {
		return nil, &InputError{File: path, Offset: -1, Msg: "not a valid Arrow IPC stream: " + cerr.Error()}
	}
	f, _, err := opts.opener()(path)
	if err != nil {
		return nil, openErr(path, err)
	}
	sr, err := ipc.NewReader(f, ipc.WithAllocator(opts.Alloc))
	if err != nil {
		f.Close()
		return nil, &InputError{File: path, Offset: -1, Msg: "not a valid Arrow IPC stream: " + err.Error()}
	}
	return &arrowStreamReader{path: path, f: f, r: sr}, nil
}

func (a *arrowStreamReader) Schema() *arrow.Schema { return a.r.Schema() }
func (a *arrowStreamReader) Record() arrow.Record  { return a.r.Record() }

func (a *arrowStreamReader) Err() error {
	if a.err != nil {
		return a.err
	}
	if err := a.r.Err(); err != nil && !errors.Is(err, io.EOF) {
		return &InputError{File: a.path, Offset: -1, Msg: fmt.Sprintf("corrupt Arrow stream after batch %d: %v", a.n, err)}
	}
	return nil
}

func (a *arrowStreamReader) Next() (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			a.err = &InputError{File: a.path, Offset: -1, Msg: fmt.Sprintf("corrupt Arrow stream after batch %d: %v", a.n, r)}
			ok = false
		}
	}()
	if a.err != nil {
		return false
	}
	if !a.r.Next() {
		return false
	}
	if err := validateRecord(a.r.Record()); err != nil {
		a.err = &InputError{File: a.path, Offset: -1, Msg: fmt.Sprintf("corrupt Arrow stream after batch %d: %v", a.n, err)}
		return false
	}
	a.n++
	return true
}

func (a *arrowStreamReader) Close() error {
	a.r.Release()
	return a.f.Close()
}
