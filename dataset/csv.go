package dataset

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// DefaultSampleRows is how many leading rows CSV type inference examines.
const DefaultSampleRows = 10000

// csvReader reads a CSV file with a header row into typed Arrow batches.
// Column types are inferred from the leading rows; a later value that does
// not fit ends the read with a *TypeConflictError (Stream widens and
// restarts).
type csvReader struct {
	path   string
	f      *os.File
	cr     *csv.Reader
	schema *arrow.Schema
	names  []string
	bld    *array.RecordBuilder
	batch  int
	sample [][]string // leading rows kept for inference, drained first
	lines  []int64    // their line numbers
	rec    arrow.Record
	err    error
	done   bool
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func openCSV(path string, opts Options) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openErr(path, err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if b, _ := br.Peek(3); len(b) == 3 && string(b) == string(utf8BOM) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = false
	cr.FieldsPerRecord = -1 // checked here, with a clearer message
	r := &csvReader{path: path, f: f, cr: cr, batch: opts.BatchRows}
	if err := r.init(opts); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func (r *csvReader) init(opts Options) error {
	header, err := r.cr.Read()
	if errors.Is(err, io.EOF) {
		return inputErr(r.path, 1, "", 0, "file is empty: a header row is required")
	}
	if err != nil {
		return r.parseErr(err)
	}
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
	guesses := make([]typeGuess, len(header))
	for i := range guesses {
		guesses[i] = newTypeGuess()
	}
	for len(r.sample) < opts.SampleRows {
		rec, line, err := r.readRow()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for i, v := range rec {
			guesses[i].observe(v)
		}
		r.sample = append(r.sample, rec)
		r.lines = append(r.lines, line)
	}
	fields := make([]arrow.Field, len(header))
	for i, h := range header {
		t := guesses[i].result()
		if opts.StringColumns[h] {
			t = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{Name: h, Type: t, Nullable: true}
	}
	r.schema = arrow.NewSchema(fields, nil)
	r.bld = array.NewRecordBuilder(opts.Alloc, r.schema)
	return nil
}

// readRow reads one record and validates its shape and encoding.
func (r *csvReader) readRow() ([]string, int64, error) {
	rec, err := r.cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, r.parseErr(err)
	}
	line, _ := r.cr.FieldPos(0)
	if len(rec) != len(r.names) {
		return nil, 0, inputErr(r.path, int64(line), "", r.cr.InputOffset(),
			"row has %d fields, the header has %d", len(rec), len(r.names))
	}
	for i, v := range rec {
		if !utf8.ValidString(v) {
			return nil, 0, inputErr(r.path, int64(line), r.names[i], -1, "value is not valid UTF-8 text")
		}
	}
	return rec, int64(line), nil
}

func (r *csvReader) parseErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return inputErr(r.path, int64(pe.Line), "", -1, "malformed CSV at character %d of the line: %v", pe.Column, pe.Err)
	}
	return inputErr(r.path, 0, "", r.cr.InputOffset(), "cannot read: %v", err)
}

func (r *csvReader) Schema() *arrow.Schema { return r.schema }
func (r *csvReader) Record() arrow.Record  { return r.rec }
func (r *csvReader) Err() error            { return r.err }

func (r *csvReader) Next() bool {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	if r.err != nil || r.done {
		return false
	}
	n := 0
	for n < r.batch {
		var rec []string
		var line int64
		if len(r.sample) > 0 {
			rec, line = r.sample[0], r.lines[0]
			r.sample, r.lines = r.sample[1:], r.lines[1:]
		} else {
			var err error
			rec, line, err = r.readRow()
			if errors.Is(err, io.EOF) {
				r.done = true
				break
			}
			if err != nil {
				r.err = err
				return false
			}
		}
		if err := r.append(rec, line); err != nil {
			r.err = err
			return false
		}
		n++
	}
	if n == 0 {
		return false
	}
	r.rec = r.bld.NewRecord()
	return true
}

func (r *csvReader) append(rec []string, line int64) error {
	for i, v := range rec {
		b := r.bld.Field(i)
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
			return &TypeConflictError{File: r.path, Line: line, Column: r.names[i], Type: r.schema.Field(i).Type.String()}
		}
	}
	return nil
}

func (r *csvReader) Close() error {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	if r.bld != nil {
		r.bld.Release()
	}
	return r.f.Close()
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
}

func newTypeGuess() typeGuess {
	return typeGuess{isInt: true, isFloat: true, isBool: true, isDate: true, digitsOnly: true}
}

func (g *typeGuess) observe(v string) {
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
