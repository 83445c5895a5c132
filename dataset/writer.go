package dataset

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/csv"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Writer writes record batches to a dataset file. Nothing appears at the
// destination path until Commit succeeds: the data goes to a hidden temporary
// file beside it, renamed into place on Commit and removed on Abort, so a
// failed or interrupted write never leaves a partial file behind.
type Writer struct {
	path, tmp string
	f         *os.File
	buf       *bufio.Writer
	enc       recordEncoder
	done      bool
}

type recordEncoder interface {
	Write(arrow.Record) error
	Close() error
}

// Create starts writing a dataset at path in the format its extension names
// (.csv, .parquet, .arrow, .arrows).
func Create(path string, schema *arrow.Schema) (*Writer, error) {
	format, err := FormatFromExt(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%s: cannot create: %w", path, err)
	}
	w := &Writer{path: path, tmp: f.Name(), f: f, buf: bufio.NewWriterSize(f, 1<<20)}
	switch format {
	case CSV:
		w.enc = &csvEncoder{w: csv.NewWriter(w.buf, schema, csv.WithHeader(true), csv.WithNullWriter(""))}
	case ArrowFile:
		w.enc, err = ipc.NewFileWriter(bufferedSeeker{w.buf, w.f}, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	case ArrowStream:
		w.enc = ipc.NewWriter(w.buf, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	case Parquet:
		w.enc, err = newParquetEncoder(w.buf, schema)
	}
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// Write appends one record batch.
func (w *Writer) Write(rec arrow.Record) error {
	if err := w.enc.Write(rec); err != nil {
		return fmt.Errorf("%s: write: %w", w.path, err)
	}
	return nil
}

// Commit finishes the file and moves it into place.
func (w *Writer) Commit() error {
	if w.done {
		return fmt.Errorf("%s: writer already closed", w.path)
	}
	err := w.enc.Close()
	if err == nil {
		err = w.buf.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp, w.path)
	}
	w.done = true
	if err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("%s: %w", w.path, err)
	}
	return nil
}

// Abort discards everything written. It is safe to call after Commit, where
// it does nothing, so `defer w.Abort()` is the usual pattern.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.tmp)
}

type csvEncoder struct{ w *csv.Writer }

func (c *csvEncoder) Write(rec arrow.Record) error { return c.w.Write(rec) }
func (c *csvEncoder) Close() error {
	c.w.Flush()
	return c.w.Error()
}

// bufferedSeeker buffers writes to a file and flushes before seeking, for
// encoders that ask for an io.WriteSeeker.
type bufferedSeeker struct {
	*bufio.Writer
	f *os.File
}

func (b bufferedSeeker) Seek(offset int64, whence int) (int64, error) {
	if err := b.Flush(); err != nil {
		return 0, err
	}
	return b.f.Seek(offset, whence)
}

// Convert rewrites the dataset at src (read as opts say) into each of dsts,
// in the format of each one's extension, in one streaming pass. It returns
// the schema and the row count; nothing is left at any dst on failure.
func Convert(ctx context.Context, src string, opts Options, dsts ...string) (*arrow.Schema, int64, error) {
	var schema *arrow.Schema
	var rows int64
	err := Stream(ctx, src, opts, func(r Reader, _ Format) error {
		schema, rows = r.Schema(), 0
		var ws []*Writer
		defer func() {
			for _, w := range ws {
				w.Abort()
			}
		}()
		for _, dst := range dsts {
			w, err := Create(dst, schema)
			if err != nil {
				return err
			}
			ws = append(ws, w)
		}
		for r.Next() {
			rec := r.Record()
			rows += rec.NumRows()
			for _, w := range ws {
				if err := w.Write(rec); err != nil {
					return err
				}
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
		for _, w := range ws {
			if err := w.Commit(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return schema, rows, nil
}
