package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/sluicehq/sluice/dataset"
)

// Kind is what a product is.
type Kind string

// Product kinds. Tables and text are analysed; the others are file-type
// findings for the policy.
const (
	KindTable    Kind = "table"
	KindDocument Kind = "document" // JSON that is not a table
	KindText     Kind = "text"     // plain text, Markdown, logs
	KindImage    Kind = "image"
	KindModel    Kind = "model"
	KindArchive  Kind = "archive"
	KindBinary   Kind = "binary"
	KindUnknown  Kind = "unknown"
)

// Product is a parsed output file.
type Product struct {
	Path   string   `json:"path"`
	Kind   Kind     `json:"kind"`
	Format string   `json:"format"`
	Size   int64    `json:"size"`
	SHA256 string   `json:"sha256"`
	Tables []*Table `json:"-"`
	Text   []Line   `json:"-"` // free text: lines, JSON strings and keys
	// ParseError is set when the product could not be read; it becomes a
	// finding (a product that cannot be read never leaves).
	ParseError string `json:"parse_error,omitempty"`
}

// Rows is the number of table rows in the product.
func (p *Product) Rows() int64 {
	var n int64
	for _, t := range p.Tables {
		n += int64(t.Rows)
	}
	return n
}

// Line is a piece of free text with its location.
type Line struct {
	Where string
	Text  string
}

// Table is a table of a product, as text cells.
type Table struct {
	Name    string
	Columns []*Column
	Rows    int

	// recoverGroups, once: released tables are compared with every product,
	// by every check that runs at the same time.
	groupsOnce sync.Once
	groups     []*roaring.Bitmap
}

// Column is one column of a table; "" is a missing value. What the
// detectors derive from a column (its numbers, its grounding in the
// source) is computed once and kept with it, safely for concurrent checks
// (a released product's tables are read by all of them). A table is
// analysed against one index only.
type Column struct {
	Name   string
	Values []string

	parseOnce  sync.Once
	parsed     *parsedColumn
	groundOnce sync.Once
	grounded   keyCol // form nil when it could not be grounded
}

// parsedColumn is a column read as numbers.
type parsedColumn struct {
	vals, tol []float64
	numeric   bool // every non-empty value is a number, and there is one
	integer   bool // …and every one is written as an integer
}

func (t *Table) column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ParseOptions bound parsing.
type ParseOptions struct {
	MaxBytes int64 // files larger are not parsed (a file_size finding decides)
	MaxRows  int   // tables are truncated after this many rows (a row_limit finding decides)
}

var (
	extText    = map[string]string{".txt": "text", ".log": "log", ".out": "log", ".err": "log", ".md": "markdown", ".markdown": "markdown", "": "text"}
	extImage   = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".svg": true, ".bmp": true, ".webp": true, ".pdf": true, ".tif": true, ".tiff": true}
	extModel   = map[string]bool{".pkl": true, ".pickle": true, ".joblib": true, ".pt": true, ".pth": true, ".onnx": true, ".h5": true, ".hdf5": true, ".safetensors": true, ".npy": true, ".npz": true, ".rds": true, ".rdata": true}
	extArchive = map[string]bool{".zip": true, ".tar": true, ".gz": true, ".tgz": true, ".bz2": true, ".xz": true, ".7z": true, ".rar": true, ".zst": true}
	magics     = []struct {
		prefix []byte
		kind   Kind
	}{
		{[]byte("\x89PNG"), KindImage}, {[]byte("\xff\xd8\xff"), KindImage}, {[]byte("GIF8"), KindImage}, {[]byte("%PDF"), KindImage},
		{[]byte("PK\x03\x04"), KindArchive}, {[]byte("\x1f\x8b"), KindArchive}, {[]byte("BZh"), KindArchive}, {[]byte("\xfd7zXZ"), KindArchive}, {[]byte("7z\xbc\xaf"), KindArchive},
		{[]byte("\x80\x04\x95"), KindModel}, {[]byte("\x93NUMPY"), KindModel}, {[]byte("\x89HDF"), KindModel},
	}
)

// Parse reads a product file. Problems with its content become the
// product's ParseError, not an error: only I/O failures are errors.
func Parse(ctx context.Context, path string, opts ParseOptions) (prod *Product, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("product %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return &Product{Path: path, Kind: KindUnknown, Format: "not a regular file"}, nil
	}
	p := &Product{Path: path, Size: fi.Size()}
	sum, head, err := hashHead(path)
	if err != nil {
		return nil, fmt.Errorf("product %s: %w", path, err)
	}
	p.SHA256 = sum
	ext := strings.ToLower(filepath.Ext(path))
	for _, m := range magics {
		if bytes.HasPrefix(head, m.prefix) {
			p.Kind, p.Format = m.kind, strings.TrimPrefix(ext, ".")
			return p, nil
		}
	}
	switch {
	case extImage[ext]:
		p.Kind, p.Format = KindImage, ext[1:]
		return p, nil
	case extModel[ext]:
		p.Kind, p.Format = KindModel, ext[1:]
		return p, nil
	case extArchive[ext]:
		p.Kind, p.Format = KindArchive, ext[1:]
		return p, nil
	}
	if opts.MaxBytes > 0 && p.Size > opts.MaxBytes {
		// Too large to parse: the size finding decides; the kind is what
		// the name says, so that the file is not also called unknown.
		p.Kind, p.Format = KindUnknown, strings.TrimPrefix(ext, ".")
		switch ext {
		case ".csv", ".tsv", ".parquet", ".arrow", ".arrows", ".feather", ".ipc", ".jsonl", ".ndjson":
			p.Kind = KindTable
		case ".json":
			p.Kind = KindDocument
		default:
			if _, ok := extText[ext]; ok && isText(head) {
				p.Kind = KindText
			}
		}
		return p, nil
	}
	defer func() {
		if r := recover(); r != nil {
			p.Tables, p.Text = nil, nil
			p.ParseError = fmt.Sprintf("parser failed: %v", r)
			prod, err = p, nil
		}
	}()
	switch ext {
	case ".csv", ".tsv":
		p.Kind, p.Format = KindTable, ext[1:]
		p.parseDelimited(path, ext == ".tsv", opts)
	case ".parquet", ".arrow", ".arrows", ".feather", ".ipc":
		p.Kind, p.Format = KindTable, ext[1:]
		p.parseDataset(ctx, path, opts)
	case ".json":
		p.Format = "json"
		p.parseJSON(path, opts)
	case ".jsonl", ".ndjson":
		p.Kind, p.Format = KindTable, "jsonl"
		p.parseJSONL(path, opts)
	default:
		format, ok := extText[ext]
		if !ok {
			format = strings.TrimPrefix(ext, ".")
		}
		if !isText(head) {
			p.Kind, p.Format = KindBinary, format
			if !ok {
				p.Kind = KindUnknown
			}
			return p, nil
		}
		if !ok {
			p.Kind, p.Format = KindUnknown, format
			return p, nil
		}
		p.Kind, p.Format = KindText, format
		p.parseText(path, format == "markdown", opts)
	}
	return p, nil
}

func hashHead(path string) (string, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	h := sha256.New()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	h.Write(head)
	if _, err := io.Copy(h, f); err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(h.Sum(nil)), head, nil
}

// isText reports whether the first bytes look like UTF-8 text.
func isText(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return false
	}
	// A multi-byte character may be cut at the end of the sample.
	for i := 0; i < 3 && len(head) > 0 && !utf8.Valid(head); i++ {
		head = head[:len(head)-1]
	}
	return utf8.Valid(head)
}

func (p *Product) fail(format string, args ...any) {
	p.Tables, p.Text = nil, nil
	p.ParseError = fmt.Sprintf(format, args...)
}

func (p *Product) parseDelimited(path string, tsv bool, opts ParseOptions) {
	f, err := os.Open(path)
	if err != nil {
		p.fail("cannot open: %v", err)
		return
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = -1
	if tsv {
		r.Comma = '\t'
		r.LazyQuotes = true
	}
	header, err := r.Read()
	if err != nil {
		p.fail("no header row: %v", errWithoutValue(err))
		return
	}
	t := &Table{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if h == "" {
			h = fmt.Sprintf("column_%d", i+1)
		}
		t.Columns = append(t.Columns, &Column{Name: h})
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.fail("malformed %s: %v", p.Format, errWithoutValue(err))
			return
		}
		if len(rec) != len(t.Columns) {
			line, _ := r.FieldPos(0)
			p.fail("line %d has %d fields, the header has %d", line, len(rec), len(t.Columns))
			return
		}
		if opts.MaxRows > 0 && t.Rows >= opts.MaxRows {
			t.Rows++ // one over the limit is enough for the row_limit finding
			break
		}
		for i, v := range rec {
			if !utf8.ValidString(v) {
				line, _ := r.FieldPos(0)
				p.fail("line %d, column %q: not valid UTF-8", line, t.Columns[i].Name)
				return
			}
			t.Columns[i].Values = append(t.Columns[i].Values, strings.TrimSpace(v))
		}
		t.Rows++
	}
	p.Tables = []*Table{t}
	p.Text = headerText(t)
}

// errWithoutValue keeps the position of a CSV error but not its quote of
// the data.
func errWithoutValue(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d, character %d: %v", pe.Line, pe.Column, pe.Err)
	}
	return err.Error()
}

func headerText(t *Table) []Line {
	var names []string
	for _, c := range t.Columns {
		names = append(names, c.Name)
	}
	return []Line{{Where: "header", Text: strings.Join(names, " ")}}
}

func (p *Product) parseDataset(ctx context.Context, path string, opts ParseOptions) {
	err := dataset.Stream(ctx, path, dataset.Options{}, func(r dataset.Reader, _ dataset.Format) error {
		t := &Table{}
		for _, f := range r.Schema().Fields() {
			t.Columns = append(t.Columns, &Column{Name: f.Name})
		}
		for r.Next() {
			rec := r.Record()
			if opts.MaxRows > 0 && t.Rows > opts.MaxRows {
				break // over the limit: the row_limit finding decides; no need to read on
			}
			n := int(rec.NumRows())
			if opts.MaxRows > 0 {
				// Keep values up to the limit; count the rest in one step
				// (a corrupt batch may declare billions of rows).
				n = min(n, opts.MaxRows-t.Rows)
				t.Rows += int(rec.NumRows()) - n
			}
			for i := 0; i < n; i++ {
				for j, c := range rec.Columns() {
					v := ""
					if c.IsValid(i) {
						v = c.ValueStr(i)
					}
					t.Columns[j].Values = append(t.Columns[j].Values, v)
				}
				t.Rows++
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
		p.Tables = []*Table{t}
		p.Text = headerText(t)
		return nil
	})
	if err != nil {
		p.fail("%v", err)
	}
}

func (p *Product) parseJSON(path string, opts ParseOptions) {
	data, err := os.ReadFile(path)
	if err != nil {
		p.fail("cannot read: %v", err)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		p.fail("invalid JSON at byte %d", dec.InputOffset())
		return
	}
	if dec.More() {
		p.fail("invalid JSON: data after the document at byte %d", dec.InputOffset())
		return
	}
	if rows, ok := doc.([]any); ok {
		if t := tableFromObjects("", rows, opts); t != nil {
			p.Kind = KindTable
			p.Tables = []*Table{t}
			p.Text = headerText(t)
			return
		}
	}
	p.Kind = KindDocument
	p.walkJSON("$", doc, opts)
}

// walkJSON collects the strings and keys of a document as text, and arrays
// of objects as tables.
func (p *Product) walkJSON(where string, v any, opts ParseOptions) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p.Text = append(p.Text, Line{Where: where, Text: k})
			p.walkJSON(where+"."+k, x[k], opts)
		}
	case []any:
		if t := tableFromObjects(where, x, opts); t != nil {
			p.Tables = append(p.Tables, t)
			p.Text = append(p.Text, headerText(t)...)
			return
		}
		for i, e := range x {
			p.walkJSON(fmt.Sprintf("%s[%d]", where, i), e, opts)
		}
	case string:
		p.Text = append(p.Text, Line{Where: where, Text: x})
	case json.Number:
		p.Text = append(p.Text, Line{Where: where, Text: x.String()})
	}
}

// tableFromObjects turns an array of flat objects into a table; nil if the
// array is not that.
func tableFromObjects(name string, rows []any, opts ParseOptions) *Table {
	if len(rows) == 0 {
		return nil
	}
	t := &Table{Name: name}
	index := map[string]int{}
	for _, r := range rows {
		obj, ok := r.(map[string]any)
		if !ok {
			return nil
		}
		for k := range obj {
			if _, seen := index[k]; !seen {
				index[k] = len(t.Columns)
				t.Columns = append(t.Columns, &Column{Name: k})
			}
		}
	}
	sort.Slice(t.Columns, func(a, b int) bool { return t.Columns[a].Name < t.Columns[b].Name })
	for i, c := range t.Columns {
		index[c.Name] = i
	}
	for _, r := range rows {
		if opts.MaxRows > 0 && t.Rows >= opts.MaxRows {
			t.Rows++
			continue
		}
		obj := r.(map[string]any)
		for _, c := range t.Columns {
			c.Values = append(c.Values, jsonCell(obj[c.Name]))
		}
		t.Rows++
	}
	return t
}

func jsonCell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// lines opens a product for reading line by line (lines up to 16 MiB).
func (p *Product) lines(path string) (*bufio.Scanner, func(), bool) {
	f, err := os.Open(path)
	if err != nil {
		p.fail("cannot open: %v", err)
		return nil, nil, false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return sc, func() { f.Close() }, true
}

func (p *Product) parseJSONL(path string, opts ParseOptions) {
	sc, done, ok := p.lines(path)
	if !ok {
		return
	}
	defer done()
	var rows []any
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			p.fail("line %d: invalid JSON", line)
			return
		}
		rows = append(rows, v)
	}
	if err := sc.Err(); err != nil {
		p.fail("line %d: %v", line+1, err)
		return
	}
	if t := tableFromObjects("", rows, opts); t != nil {
		p.Tables = []*Table{t}
		p.Text = headerText(t)
		return
	}
	p.Kind = KindDocument
	for i, r := range rows {
		p.walkJSON(fmt.Sprintf("line %d", i+1), r, opts)
	}
}

// parseText keeps every line as text; Markdown pipe tables become tables.
func (p *Product) parseText(path string, markdown bool, opts ParseOptions) {
	sc, done, ok := p.lines(path)
	if !ok {
		return
	}
	defer done()
	line := 0
	var pipe []string
	flush := func() {
		if t := pipeTable(pipe); t != nil {
			p.Tables = append(p.Tables, t)
		}
		pipe = nil
	}
	for sc.Scan() {
		line++
		s := sc.Text()
		if !utf8.ValidString(s) {
			p.fail("line %d: not valid UTF-8", line)
			return
		}
		p.Text = append(p.Text, Line{Where: fmt.Sprintf("line %d", line), Text: s})
		if markdown && strings.HasPrefix(strings.TrimSpace(s), "|") {
			pipe = append(pipe, s)
		} else if pipe != nil {
			flush()
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		p.fail("line %d: %v", line+1, err)
	}
}

// pipeTable parses a Markdown table (header, separator, rows).
func pipeTable(lines []string) *Table {
	if len(lines) < 3 {
		return nil
	}
	cells := func(s string) []string {
		s = strings.Trim(strings.TrimSpace(s), "|")
		parts := strings.Split(s, "|")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	header := cells(lines[0])
	if !strings.Contains(lines[1], "-") {
		return nil
	}
	t := &Table{Name: "markdown table"}
	for _, h := range header {
		t.Columns = append(t.Columns, &Column{Name: h})
	}
	for _, l := range lines[2:] {
		row := cells(l)
		if len(row) != len(header) {
			continue
		}
		for i, v := range row {
			t.Columns[i].Values = append(t.Columns[i].Values, v)
		}
		t.Rows++
	}
	return t
}
