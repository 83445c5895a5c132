package dataset_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/demodata"
)

// corpus is the shared egress corpus, beside the repository.
const corpusResidents = "../../shared/egress-corpus/sources/residents.csv"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll reads a dataset into rows of formatted values.
func readAll(t *testing.T, path string) (*arrow.Schema, [][]string) {
	t.Helper()
	var schema *arrow.Schema
	var rows [][]string
	err := dataset.Stream(context.Background(), path, dataset.Options{BatchRows: 3}, func(r dataset.Reader, _ dataset.Format) error {
		schema, rows = r.Schema(), nil
		for r.Next() {
			rec := r.Record()
			for i := 0; i < int(rec.NumRows()); i++ {
				var row []string
				for _, c := range rec.Columns() {
					if c.IsNull(i) {
						row = append(row, "<null>")
					} else {
						row = append(row, c.ValueStr(i))
					}
				}
				rows = append(rows, row)
			}
		}
		return r.Err()
	})
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return schema, rows
}

func TestCSVTypeInference(t *testing.T) {
	p := writeFile(t, "t.csv", "\ufeffid,code,zip,card,n,x,flag,day,text,empty\n"+
		"110105194912310020,410105,010000,62123456789012345,12,1.5,true,2020-02-29,\"a, \"\"quoted\"\" field\",\n"+
		"11010519491231002X,410106,020000,6212345678901234567,-3,2,false,2021-01-01,plain,\n")
	schema, rows := readAll(t, p)
	want := map[string]arrow.DataType{
		"id": arrow.BinaryTypes.String, "code": arrow.BinaryTypes.String, "zip": arrow.BinaryTypes.String,
		"card": arrow.BinaryTypes.String, "n": arrow.PrimitiveTypes.Int64, "x": arrow.PrimitiveTypes.Float64,
		"flag": arrow.FixedWidthTypes.Boolean, "day": arrow.FixedWidthTypes.Date32, "text": arrow.BinaryTypes.String,
		"empty": arrow.BinaryTypes.String,
	}
	for name, typ := range want {
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("column %q missing from %v", name, schema)
		}
		if got := schema.Field(idx[0]).Type; !arrow.TypeEqual(got, typ) {
			t.Errorf("column %q: got type %s, want %s", name, got, typ)
		}
	}
	if got := rows[0][8]; got != `a, "quoted" field` {
		t.Errorf("quoted field: got %q", got)
	}
	if got := rows[0][7]; got != "2020-02-29" {
		t.Errorf("date: got %q", got)
	}
	if got := rows[1][9]; got != "<null>" {
		t.Errorf("empty field: got %q, want null", got)
	}
}

func TestCSVTypeConflictWidens(t *testing.T) {
	var b strings.Builder
	b.WriteString("n,m\n")
	for i := 0; i < 50; i++ {
		b.WriteString("1,2\n")
	}
	b.WriteString("unknown,3\n")
	p := writeFile(t, "late.csv", b.String())
	calls := 0
	err := dataset.Stream(context.Background(), p, dataset.Options{SampleRows: 10, BatchRows: 8}, func(r dataset.Reader, _ dataset.Format) error {
		calls++
		for r.Next() {
		}
		if err := r.Err(); err != nil {
			return err
		}
		if got := r.Schema().Field(0).Type; !arrow.TypeEqual(got, arrow.BinaryTypes.String) {
			t.Errorf("n after widening: %s, want utf8", got)
		}
		if got := r.Schema().Field(1).Type; !arrow.TypeEqual(got, arrow.PrimitiveTypes.Int64) {
			t.Errorf("m: %s, want int64", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("fn called %d times, want 2 (one restart)", calls)
	}
}

func TestRoundTripFormats(t *testing.T) {
	dir := t.TempDir()
	if err := demodata.Write(context.Background(), dir, 500, 3, dataset.CSV); err != nil {
		t.Fatal(err)
	}
	src, _ := demodata.Files(dir, dataset.CSV)
	_, want := readAll(t, src)
	if len(want) != 500 {
		t.Fatalf("demo data has %d rows, want 500", len(want))
	}
	prev := src
	for _, ext := range []string{".arrow", ".arrows", ".parquet", ".csv"} {
		dst := filepath.Join(dir, "copy"+ext)
		copyDataset(t, prev, dst)
		_, got := readAll(t, dst)
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", ext, len(got), len(want))
		}
		for i := range want {
			if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
				t.Fatalf("%s row %d differs:\n got %v\nwant %v", ext, i, got[i], want[i])
			}
		}
		prev = dst
	}
}

func copyDataset(t *testing.T, src, dst string) {
	t.Helper()
	if _, _, err := dataset.Convert(context.Background(), src, dataset.Options{}, dst); err != nil {
		t.Fatalf("copy %s -> %s: %v", src, dst, err)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.MkdirAll(good, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := demodata.Write(context.Background(), good, 3000, 1, dataset.Parquet); err != nil {
		t.Fatal(err)
	}
	pq, _ := demodata.Files(good, dataset.Parquet)
	pqBytes, _ := os.ReadFile(pq)
	if err := demodata.Write(context.Background(), good, 3000, 1, dataset.ArrowFile); err != nil {
		t.Fatal(err)
	}
	arw, _ := demodata.Files(good, dataset.ArrowFile)
	arwBytes, _ := os.ReadFile(arw)

	tests := []struct {
		name, file, content string
		want                []string // substrings of the error
	}{
		{"empty", "empty.csv", "", []string{"empty.csv", "empty"}},
		{"ragged", "ragged.csv", "a,b,c\n1,2,3\n4,5\n", []string{"ragged.csv", "line 3", "2 fields", "header has 3"}},
		{"bad quote", "quote.csv", "a,b\n1,\"x\"y\n", []string{"quote.csv", "line 2"}},
		{"non-utf8", "latin1.csv", "a,b\n1,caf\xe9\n", []string{"latin1.csv", "line 2", `column "b"`, "UTF-8"}},
		{"duplicate header", "dup.csv", "a,a\n1,2\n", []string{"dup.csv", "line 1", `column "a"`, "duplicate"}},
		{"garbage parquet", "garbage.parquet", "\x00\x01\x02garbage that is not parquet", []string{"garbage.parquet", "not a Parquet file"}},
		{"truncated parquet", "trunc.parquet", string(pqBytes[:len(pqBytes)/2]), []string{"trunc.parquet", "Parquet"}},
		{"truncated arrow", "trunc.arrow", string(arwBytes[:len(arwBytes)/2]), []string{"trunc.arrow", "Arrow"}},
		{"garbage arrow", "garbage.arrow", "\x89PNG not arrow", []string{"garbage.arrow", "not an Arrow IPC"}},
		{"unknown binary", "blob.bin", "\x00\x01\x02\x03", []string{"blob.bin", "unknown format"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, tc.name+".out.arrow")
			_, _, err := dataset.Convert(context.Background(), p, dataset.Options{}, out)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, dataset.ErrInvalidInput) {
				t.Errorf("error %q is not ErrInvalidInput", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			assertNoLeftovers(t, dir, tc.name+".out.arrow")
		})
	}
}

// assertNoLeftovers fails if the output or a temporary of it exists.
func assertNoLeftovers(t *testing.T, dir, name string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), name) {
			t.Errorf("partial output left behind: %s", e.Name())
		}
	}
}

func TestClassifyCorpus(t *testing.T) {
	p, err := dataset.Inspect(context.Background(), corpusResidents, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rows != 6000 {
		t.Errorf("rows = %d, want 6000", p.Rows)
	}
	s := dataset.Classify(p)
	want := map[string]dataset.ColumnClass{
		"person_id":      {Class: dataset.Identifier, PII: "cn_resident_id"},
		"phone":          {Class: dataset.Identifier, PII: "cn_mobile"},
		"bank_card":      {Class: dataset.Identifier, PII: "bank_card"},
		"name":           {Class: dataset.Identifier, PII: "person_name"},
		"birth_date":     {Class: dataset.QuasiIdentifier},
		"district_code":  {Class: dataset.QuasiIdentifier},
		"monthly_income": {Class: dataset.Sensitive},
		"diagnosis":      {Class: dataset.Sensitive},
	}
	for col, w := range want {
		got := s.Classes.Get(col)
		if got.Class != w.Class || got.PII != w.PII {
			t.Errorf("%s: got %s/%s, want %s/%s", col, got.Class, got.PII, w.Class, w.PII)
		}
		if s.Reasons[col] == "" {
			t.Errorf("%s: no reason given", col)
		}
	}
	// The suggestion round-trips through the classification file format.
	var b strings.Builder
	if err := s.WriteYAML(&b); err != nil {
		t.Fatal(err)
	}
	back, err := dataset.ParseClasses("suggested.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("suggested YAML does not parse: %v\n%s", err, b.String())
	}
	if strings.Join(back.Names, ",") != strings.Join(s.Classes.Names, ",") {
		t.Errorf("column order changed: %v vs %v", back.Names, s.Classes.Names)
	}
	// The corpus classification file parses too.
	if _, err := dataset.LoadClasses("../../shared/egress-corpus/sources/residents.classes.yaml"); err != nil {
		t.Errorf("corpus classes: %v", err)
	}
}

func TestParseClassesErrors(t *testing.T) {
	tests := map[string]string{
		"columns:\n  a: {class: secret}\n":          `class "secret"`,
		"columns:\n  a: {class: other, grade: 7}\n": "grade 7",
		"columns:\n  a: {class: other, pii: dna}\n": `unknown pii kind "dna"`,
		"columns: [a, b]\n":                         "must be a mapping",
		"":                                          "empty",
		"colums:\n  a: {class: other}\n":            "invalid classification YAML",
	}
	for in, want := range tests {
		_, err := dataset.ParseClasses("c.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "c.yaml") {
			t.Errorf("ParseClasses(%q) = %v, want error mentioning c.yaml and %q", in, err, want)
		}
	}
}

func TestInspectCountsNullsAndDistinct(t *testing.T) {
	p := writeFile(t, "n.csv", "a,b\n1,x\n,x\n3,\n4,y\n")
	prof, err := dataset.Inspect(context.Background(), p, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if prof.Rows != 4 || prof.Columns[0].Nulls != 1 || prof.Columns[1].Nulls != 1 {
		t.Errorf("rows/nulls: %+v", prof)
	}
	if prof.Columns[0].Distinct != 3 || prof.Columns[1].Distinct != 2 {
		t.Errorf("distinct: a=%d b=%d, want 3 and 2", prof.Columns[0].Distinct, prof.Columns[1].Distinct)
	}
}

// TestParquetNullsRoundTrip: the parallel Parquet writer keeps nulls and
// values of every flat type, across several row groups.
func TestParquetNullsRoundTrip(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,n,x,day,label\n")
	for i := range 70000 {
		switch i % 7 {
		case 0:
			fmt.Fprintf(&b, "%d,,,,\n", i)
		case 3:
			fmt.Fprintf(&b, "%d,%d,,2024-01-%02d,\n", i, i*3, i%28+1)
		default:
			fmt.Fprintf(&b, "%d,%d,%d.5,2024-02-%02d,l%d\n", i, i*3, i, i%28+1, i%13)
		}
	}
	src := writeFile(t, "nulls.csv", b.String())
	_, want := readAll(t, src)
	dir := t.TempDir()
	pq, back := filepath.Join(dir, "n.parquet"), filepath.Join(dir, "n.csv")
	copyDataset(t, src, pq)
	copyDataset(t, pq, back)
	_, got := readAll(t, back)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
			t.Fatalf("row %d: got %v, want %v", i, got[i], want[i])
		}
	}
}
