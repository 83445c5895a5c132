package dataset

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// DefaultSampleRows is how many leading CSV rows type inference examines.
const DefaultSampleRows = 10000

// The CSV reader infers column types from the leading rows, then decodes the
// file in parallel: one goroutine cuts it into chunks at record boundaries,
// a decoder per core turns chunks into Arrow batches, and Next hands them
// out in file order. A value that does not fit its inferred type ends the
// read with a *TypeConflictError (Stream widens the column and restarts).
type csvReader struct {
	path   string
	names  []string
	schema *arrow.Schema
	cancel context.CancelFunc
	out    chan csvChunk // decoded chunks, in any order
	wg     sync.WaitGroup

	pending map[int]csvChunk
	next    int
	rec     arrow.Record
	err     error
	done    bool
}

// csvChunk is a run of whole records: raw bytes on the way in, a record batch
// (or an error) on the way out.
type csvChunk struct {
	seq  int
	line int64 // line number of the chunk's first byte
	data []byte
	rec  arrow.Record
	err  error
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func openCSV(path string, opts Options) (Reader, error) {
	f, _, err := opts.opener()(path)
	if err != nil {
		return nil, openErr(path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	bom := 0
	if b, _ := br.Peek(3); bytes.Equal(b, utf8BOM) {
		br.Discard(3)
		bom = 3
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked here, with a clearer message
	r := &csvReader{path: path}
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, inputErr(path, 1, "", 0, "file is empty: a header row is required")
	}
	if err != nil {
		return nil, csvParseErr(path, 0, err)
	}
	if err := r.setHeader(header); err != nil {
		return nil, err
	}
	dataStart := int64(bom) + cr.InputOffset()
	dec := &csvDecoder{alloc: opts.Alloc, path: path, names: r.names}

	// Infer types from the leading rows.
	guesses := make([]typeGuess, len(r.names))
	for i := range guesses {
		guesses[i] = newTypeGuess()
	}
	sampled := 0
	for n := 0; n < opts.SampleRows; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err := dec.check(rec, int64(line), 1, err); err != nil {
			return nil, err
		}
		for i, v := range rec {
			guesses[i].observe(v)
		}
		sampled++
	}
	if sampled > 0 {
		dec.rowBytes = int(cr.InputOffset()+int64(bom)-dataStart) / sampled
		dec.fieldBytes = make([]float64, len(guesses))
		for i, g := range guesses {
			dec.fieldBytes[i] = float64(g.bytes) / float64(sampled)
		}
	}
	fields := make([]arrow.Field, len(r.names))
	for i, h := range r.names {
		t := guesses[i].result()
		if opts.StringColumns[h] {
			t = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{Name: h, Type: t, Nullable: true}
	}
	r.schema = arrow.NewSchema(fields, nil)
	dec.schema = r.schema

	// The data is read again from its start; the header before it may span
	// several lines.
	df, _, err := opts.opener()(path)
	if err != nil {
		return nil, openErr(path, err)
	}
	head := make([]byte, dataStart)
	if _, err := io.ReadFull(df, head); err != nil {
		df.Close()
		return nil, openErr(path, err)
	}
	headerLines := int64(bytes.Count(head, []byte{'\n'}))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.pending = map[int]csvChunk{}
	workers := runtime.GOMAXPROCS(0)
	in := make(chan csvChunk, workers)
	r.out = make(chan csvChunk, workers)
	r.wg.Add(1 + workers)
	go func() {
		defer r.wg.Done()
		defer df.Close()
		defer close(in)
		splitCSV(ctx, df, 1+headerLines, chunkBytes(dec.rowBytes, opts.BatchRows), in, path)
	}()
	for i := 0; i < workers; i++ {
		go func() {
			defer r.wg.Done()
			d := *dec
			d.bld = array.NewRecordBuilder(opts.Alloc, r.schema)
			defer func() { d.bld.Release() }()
			for c := range in {
				if c.err == nil && len(c.data) > 0 {
					c.rec, c.err = d.decode(c.data, c.line)
				}
				c.data = nil
				select {
				case r.out <- c:
				case <-ctx.Done():
					if c.rec != nil {
						c.rec.Release()
					}
				}
			}
		}()
	}
	go func() { r.wg.Wait(); close(r.out) }()
	return r, nil
}

// chunkBytes sizes chunks to hold about batchRows records of the sample's
// average length.
func chunkBytes(rowBytes, batchRows int) int {
	size := 4 << 20
	if rowBytes > 0 {
		size = rowBytes * batchRows
	}
	return min(max(size, 64<<10), 16<<20)
}

func (r *csvReader) setHeader(header []string) error {
	seen := map[string]int{}
	for i, h := range header {
		if !utf8.ValidString(h) {
			return inputErr(r.path, 1, "", -1, "header field %d is not valid UTF-8", i+1)
		}
		h = strings.TrimSpace(h)
		if h == "" {
			return inputErr(r.path, 1, "", -1, "header field %d is empty: every column needs a name", i+1)
		}
		if j, dup := seen[h]; dup {
			return inputErr(r.path, 1, h, -1, "duplicate column name (fields %d and %d)", j+1, i+1)
		}
		seen[h] = i
		header[i] = h
	}
	r.names = header
	return nil
}

// splitCSV cuts the data into chunks of whole records (never inside a quoted
// field) and sends them in order. A read error is sent as a chunk error.
func splitCSV(ctx context.Context, f io.Reader, line int64, size int, in chan<- csvChunk, path string) {
	var carry []byte
	seq := 0
	send := func(c csvChunk) bool {
		select {
		case in <- c:
			seq++
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		buf := make([]byte, len(carry), len(carry)+size)
		copy(buf, carry)
		n, err := io.ReadFull(f, buf[len(carry):cap(buf)])
		buf = buf[:len(carry)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			send(csvChunk{seq: seq, line: line, err: inputErr(path, line, "", -1, "cannot read: %v", err)})
			return
		}
		cut := len(buf)
		if !eof {
			cut = lastRecordEnd(buf)
		}
		if cut > 0 {
			chunk := buf[:cut]
			if !send(csvChunk{seq: seq, line: line, data: chunk}) {
				return
			}
			line += int64(bytes.Count(chunk, []byte{'\n'}))
		}
		carry = buf[cut:]
		if eof {
			return
		}
	}
}

// lastRecordEnd returns the index just past the last newline that ends a
// record (is outside quotes), or 0 if there is none. Chunks start at record
// boundaries, so the quote state at index 0 is "outside".
func lastRecordEnd(b []byte) int {
	if bytes.IndexByte(b, '"') < 0 {
		return bytes.LastIndexByte(b, '\n') + 1
	}
	end, quoted := 0, false
	for i, c := range b {
		switch c {
		case '"':
			quoted = !quoted
		case '\n':
			if !quoted {
				end = i + 1
			}
		}
	}
	return end
}

func (r *csvReader) Schema() *arrow.Schema { return r.schema }
func (r *csvReader) Record() arrow.Record  { return r.rec }
func (r *csvReader) Err() error            { return r.err }

func (r *csvReader) Next() bool {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	for r.err == nil && !r.done {
		c, ok := r.pending[r.next]
		if !ok {
			got, open := <-r.out
			if !open {
				r.done = true
				return false
			}
			r.pending[got.seq] = got
			continue
		}
		delete(r.pending, r.next)
		r.next++
		if c.err != nil {
			r.err = c.err
			return false
		}
		if c.rec != nil && c.rec.NumRows() > 0 {
			r.rec = c.rec
			return true
		}
		if c.rec != nil {
			c.rec.Release()
		}
	}
	return false
}

func (r *csvReader) Close() error {
	r.cancel()
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	for c := range r.out { // drain so every goroutine ends
		if c.rec != nil {
			c.rec.Release()
		}
	}
	for _, c := range r.pending {
		if c.rec != nil {
			c.rec.Release()
		}
	}
	r.pending = nil
	return nil
}

// csvDecoder turns a chunk of CSV records into a record batch.
type csvDecoder struct {
	alloc      memory.Allocator
	path       string
	names      []string
	schema     *arrow.Schema
	bld        *array.RecordBuilder
	rowBytes   int       // average record length in the sample, to size builders
	fieldBytes []float64 // average value length per column in the sample
	validUTF8  bool      // the chunk being decoded is valid UTF-8
}

func (d *csvDecoder) decode(data []byte, line int64) (arrow.Record, error) {
	// One check of the whole chunk; fields are checked only if it fails, to
	// name the line and column.
	d.validUTF8 = utf8.Valid(data)
	defer func() { d.validUTF8 = false }()
	if d.rowBytes > 0 {
		rows := len(data)/d.rowBytes + 1
		for i := 0; i < d.bld.Schema().NumFields(); i++ {
			b := d.bld.Field(i)
			b.Reserve(rows + rows/8)
			if sb, ok := b.(*array.StringBuilder); ok {
				sb.ReserveData(int(float64(rows) * d.fieldBytes[i] * 1.15))
			}
		}
	}
	if bytes.IndexByte(data, '"') < 0 {
		return d.decodeUnquoted(data, line)
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		l, _ := cr.FieldPos(0)
		err = d.check(rec, int64(l), line, err)
		if err == nil {
			err = d.append(rec, line+int64(l)-1)
		}
		if err != nil {
			// A row may be half appended: start over with fresh builders.
			d.bld.Release()
			d.bld = array.NewRecordBuilder(d.alloc, d.schema)
			return nil, err
		}
	}
	return d.bld.NewRecord(), nil
}

// decodeUnquoted is the fast path for chunks without a quote character, the
// common case: records are lines and fields are split at commas, with the
// same rules as encoding/csv (CRLF accepted, empty lines skipped). Fields are
// views of data, valid only until the builders have copied them.
func (d *csvDecoder) decodeUnquoted(data []byte, line int64) (arrow.Record, error) {
	rec := make([]string, 0, len(d.names))
	for l := int64(0); len(data) > 0; l++ {
		end := bytes.IndexByte(data, '\n')
		var row []byte
		if end < 0 {
			row, data = data, nil
		} else {
			row, data = data[:end], data[end+1:]
		}
		if n := len(row); n > 0 && row[n-1] == '\r' {
			row = row[:n-1]
		}
		if len(row) == 0 {
			continue
		}
		rec = rec[:0]
		for {
			i := bytes.IndexByte(row, ',')
			if i < 0 {
				rec = append(rec, unsafe.String(unsafe.SliceData(row), len(row)))
				break
			}
			rec = append(rec, unsafe.String(unsafe.SliceData(row), i))
			row = row[i+1:]
		}
		err := d.check(rec, l+1, line, nil)
		if err == nil {
			err = d.append(rec, line+l)
		}
		if err != nil {
			d.bld.Release()
			d.bld = array.NewRecordBuilder(d.alloc, d.schema)
			return nil, err
		}
	}
	return d.bld.NewRecord(), nil
}

// check validates one record's parse result, field count and encoding. l is
// the line within the chunk (1-based), base the chunk's first line.
func (d *csvDecoder) check(rec []string, l, base int64, err error) error {
	if err != nil {
		return csvParseErr(d.path, base-1, err)
	}
	line := base + l - 1
	if len(rec) != len(d.names) {
		return inputErr(d.path, line, "", -1, "row has %d fields, the header has %d", len(rec), len(d.names))
	}
	if d.validUTF8 {
		return nil
	}
	for i, v := range rec {
		if !utf8.ValidString(v) {
			return inputErr(d.path, line, d.names[i], -1, "value is not valid UTF-8 text")
		}
	}
	return nil
}

func csvParseErr(path string, lineOffset int64, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return inputErr(path, lineOffset+int64(pe.Line), "", -1, "malformed CSV at character %d of the line: %v", pe.Column, pe.Err)
	}
	return inputErr(path, 0, "", -1, "cannot read: %v", err)
}

func (d *csvDecoder) append(rec []string, line int64) error {
	for i, v := range rec {
		b := d.bld.Field(i)
		if v == "" {
			b.AppendNull()
			continue
		}
		ok := true
		switch b := b.(type) {
		case *array.StringBuilder:
			b.Append(v)
		case *array.Int64Builder:
			var x int64
			x, ok = parseInt(v)
			b.Append(x)
		case *array.Float64Builder:
			var x float64
			x, ok = parseFloat(v)
			b.Append(x)
		case *array.BooleanBuilder:
			var x bool
			x, ok = parseBool(v)
			b.Append(x)
		case *array.Date32Builder:
			var x arrow.Date32
			x, ok = parseDate(v)
			b.Append(x)
		default:
			return fmt.Errorf("dataset: internal: unexpected builder %T", b)
		}
		if !ok {
			return &TypeConflictError{File: d.path, Line: line, Column: d.names[i], Type: d.schema.Field(i).Type.String()}
		}
	}
	return nil
}

// ---- type inference ----

// typeGuess tracks which types every non-empty value of a column fits.
type typeGuess struct {
	nonEmpty                       int
	isInt, isFloat, isBool, isDate bool
	digitsOnly                     bool // every value is plain digits
	width                          int  // common length of the values; -1 when they differ
	leadingZero                    bool // some value is a digit string with a leading zero
	maxLen                         int
	bytes                          int64 // total length, to size builders
}

func newTypeGuess() typeGuess {
	return typeGuess{isInt: true, isFloat: true, isBool: true, isDate: true, digitsOnly: true}
}

func (g *typeGuess) observe(v string) {
	g.bytes += int64(len(v))
	if v == "" {
		return
	}
	if g.nonEmpty == 0 {
		g.width = len(v)
	} else if g.width != len(v) {
		g.width = -1
	}
	g.nonEmpty++
	g.maxLen = max(g.maxLen, len(v))
	digits := isDigits(v)
	g.digitsOnly = g.digitsOnly && digits
	if digits && len(v) > 1 && v[0] == '0' {
		g.leadingZero = true
	}
	if g.isInt {
		_, g.isInt = parseInt(v)
	}
	if g.isFloat {
		_, g.isFloat = parseFloat(v)
	}
	if g.isBool {
		_, g.isBool = parseBool(v)
	}
	if g.isDate {
		_, g.isDate = parseDate(v)
	}
}

// result picks the narrowest type. Digit strings that look like codes —
// a leading zero, every value the same width of six digits or more (resident
// IDs, phone numbers, region and postal codes), or more than 15 digits (card
// and account numbers) — stay strings, so that no identifier loses digits
// or gets arithmetic applied to it.
func (g *typeGuess) result() arrow.DataType {
	if g.nonEmpty == 0 {
		return arrow.BinaryTypes.String
	}
	code := g.digitsOnly && (g.leadingZero || g.width >= 6 || g.maxLen > 15)
	switch {
	case code:
		return arrow.BinaryTypes.String
	case g.isBool:
		return arrow.FixedWidthTypes.Boolean
	case g.isInt:
		return arrow.PrimitiveTypes.Int64
	case g.isFloat:
		return arrow.PrimitiveTypes.Float64
	case g.isDate:
		return arrow.FixedWidthTypes.Date32
	}
	return arrow.BinaryTypes.String
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseInt accepts an optional sign and at most 15 digits: longer digit
// strings are identifiers, not quantities.
func parseInt(s string) (int64, bool) {
	d := s
	if d[0] == '+' || d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 15 || !isDigits(d) {
		return 0, false
	}
	x, err := strconv.ParseInt(s, 10, 64)
	return x, err == nil
}

func parseFloat(s string) (float64, bool) {
	// Only plain decimal notation: no "NaN", "Inf", hex or underscores.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, false
		}
	}
	x, err := strconv.ParseFloat(s, 64)
	return x, err == nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// parseDate accepts YYYY-MM-DD with a valid calendar date.
func parseDate(s string) (arrow.Date32, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := atoi(s[0:4])
	m, ok2 := atoi(s[5:7])
	d, ok3 := atoi(s[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return arrow.Date32(daysFromCivil(y, m, d)), true
}

func atoi(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns days since 1970-01-01 (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
