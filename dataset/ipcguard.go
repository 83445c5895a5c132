package dataset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	flatbuffers "github.com/google/flatbuffers/go"
)

// The Arrow Go IPC readers trust the flatbuffer metadata of a file: a
// corrupt or hostile field count makes them allocate without bound and the
// process dies of it. These checks walk the schema metadata first and
// refuse counts the bytes cannot hold. (Buffer sizes are bounded by
// boundedAllocator.)

const maxSchemaDepth = 64

var errCorruptIPC = errors.New("corrupt Arrow metadata")

// corruptOnPanic turns a panic of the flatbuffers accessors (out-of-range
// offsets) into errCorruptIPC.
func corruptOnPanic(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", errCorruptIPC, r)
	}
}

// checkArrowFile validates the footer of an Arrow IPC file.
func checkArrowFile(path string, open Opener) (err error) {
	defer corruptOnPanic(&err)
	f, size, err := open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if size < 16 {
		return fmt.Errorf("%w: file too short", errCorruptIPC)
	}
	var tail [10]byte
	if _, err := f.ReadAt(tail[:], size-10); err != nil {
		return err
	}
	if string(tail[4:]) != "ARROW1" {
		return fmt.Errorf("%w: no ARROW1 magic at the end (truncated)", errCorruptIPC)
	}
	n := int64(int32(binary.LittleEndian.Uint32(tail[:4])))
	if n <= 0 || n > size-16 {
		return fmt.Errorf("%w: footer length %d does not fit the file", errCorruptIPC, n)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-10-n); err != nil {
		return err
	}
	footer := rootTable(buf)
	schema, ok := subTable(footer, 1)
	if !ok {
		return fmt.Errorf("%w: footer has no schema", errCorruptIPC)
	}
	if err := checkSchema(schema, 0); err != nil {
		return err
	}
	for _, field := range []int{2, 3} { // dictionaries, record batches: vectors of 24-byte blocks
		if err := checkVector(footer, field, 24); err != nil {
			return err
		}
	}
	return nil
}

// checkArrowStream validates the schema message that opens a stream.
func checkArrowStream(path string, open Opener) error {
	f, size, err := open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, min(size, 1<<20))
	if _, err := io.ReadFull(f, head); err != nil {
		return fmt.Errorf("%w: stream too short", errCorruptIPC)
	}
	return checkSchemaMessage(head, size)
}

// checkSchemaMessage validates an encapsulated IPC schema message (the
// start of a stream, or the ARROW:schema that Parquet files carry). size is
// how many bytes the message may span.
func checkSchemaMessage(b []byte, size int64) (err error) {
	defer corruptOnPanic(&err)
	if len(b) < 8 {
		return fmt.Errorf("%w: too short", errCorruptIPC)
	}
	if binary.LittleEndian.Uint32(b[:4]) != 0xFFFFFFFF {
		return fmt.Errorf("%w: no continuation marker (pre-1.0 IPC is not accepted)", errCorruptIPC)
	}
	n := int64(int32(binary.LittleEndian.Uint32(b[4:8])))
	if n <= 0 || n > size-8 || n > int64(len(b)-8) {
		return fmt.Errorf("%w: schema message length %d does not fit", errCorruptIPC, n)
	}
	msg := rootTable(b[8 : 8+n])
	// Message.bodyLength (field 3): the reader allocates it before reading
	// the body, so a value the bytes cannot hold is refused here.
	if body := msg.GetInt64Slot(flatbuffers.VOffsetT(4+2*3), 0); body < 0 || body > size-8-n {
		return fmt.Errorf("%w: message body length %d does not fit", errCorruptIPC, body)
	}
	if schema, ok := subTable(msg, 2); ok {
		return checkSchema(schema, 0)
	}
	return fmt.Errorf("%w: the first message has no schema", errCorruptIPC)
}

func rootTable(buf []byte) *flatbuffers.Table {
	return &flatbuffers.Table{Bytes: buf, Pos: flatbuffers.GetUOffsetT(buf)}
}

func fieldOffset(t *flatbuffers.Table, field int) flatbuffers.UOffsetT {
	return flatbuffers.UOffsetT(t.Offset(flatbuffers.VOffsetT(4 + 2*field)))
}

func subTable(t *flatbuffers.Table, field int) (*flatbuffers.Table, bool) {
	o := fieldOffset(t, field)
	if o == 0 {
		return nil, false
	}
	return &flatbuffers.Table{Bytes: t.Bytes, Pos: t.Indirect(o + t.Pos)}, true
}

// checkVector refuses a vector whose declared length cannot fit the buffer.
func checkVector(t *flatbuffers.Table, field, elemSize int) error {
	o := fieldOffset(t, field)
	if o == 0 {
		return nil
	}
	if n := t.VectorLen(o); n < 0 || n*elemSize > len(t.Bytes) {
		return fmt.Errorf("%w: a vector declares %d entries in %d bytes", errCorruptIPC, n, len(t.Bytes))
	}
	return nil
}

func vectorTables(t *flatbuffers.Table, field int) []*flatbuffers.Table {
	o := fieldOffset(t, field)
	if o == 0 {
		return nil
	}
	n := t.VectorLen(o)
	start := t.Vector(o)
	out := make([]*flatbuffers.Table, n)
	for i := range out {
		out[i] = &flatbuffers.Table{Bytes: t.Bytes, Pos: t.Indirect(start + flatbuffers.UOffsetT(4*i))}
	}
	return out
}

// checkSchema walks Schema.fields (1) and custom_metadata (2).
func checkSchema(schema *flatbuffers.Table, depth int) error {
	for _, f := range []int{1, 2} {
		if err := checkVector(schema, f, 4); err != nil {
			return err
		}
	}
	for _, field := range vectorTables(schema, 1) {
		if err := checkField(field, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// checkField walks Field.name (0), children (5) and custom_metadata (6).
func checkField(field *flatbuffers.Table, depth int) error {
	if depth > maxSchemaDepth {
		return fmt.Errorf("%w: fields nested deeper than %d", errCorruptIPC, maxSchemaDepth)
	}
	for _, f := range []struct{ idx, size int }{{0, 1}, {5, 4}, {6, 4}} {
		if err := checkVector(field, f.idx, f.size); err != nil {
			return err
		}
	}
	for _, child := range vectorTables(field, 5) {
		if err := checkField(child, depth+1); err != nil {
			return err
		}
	}
	return nil
}
