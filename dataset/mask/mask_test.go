package mask_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/internal/leakcheck"
)

const (
	corpusSource  = "../../../shared/egress-corpus/sources/residents.csv"
	corpusClasses = "../../../shared/egress-corpus/sources/residents.classes.yaml"
)

// rawIdentifiers returns every value of the identifier columns of a CSV.
func rawIdentifiers(t *testing.T, path string, cls *dataset.Classes) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for i, h := range rows[0] {
		if cls.Get(h).Class != dataset.Identifier {
			continue
		}
		for _, r := range rows[1:] {
			vals = append(vals, r[i])
		}
	}
	return vals
}

func maskCorpus(t *testing.T, out string, opts mask.Options) *mask.Report {
	t.Helper()
	rep, err := mask.File(context.Background(), corpusSource, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func defaultOpts(t *testing.T, profile string) mask.Options {
	t.Helper()
	cls, err := dataset.LoadClasses(corpusClasses)
	if err != nil {
		t.Fatal(err)
	}
	p, err := mask.Builtin(profile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := mask.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return mask.Options{Profile: p, Classes: cls, Key: key, Seed: 7}
}

// TestCorpusNoRawIdentifierInOutput masks the corpus source in every output
// format and searches the bytes of the output (and of the report) for every
// raw value of every identifier column.
func TestCorpusNoRawIdentifierInOutput(t *testing.T) {
	opts := defaultOpts(t, "prod")
	raw := rawIdentifiers(t, corpusSource, opts.Classes)
	if len(raw) != 4*6000 {
		t.Fatalf("found %d raw identifier values, want 24000", len(raw))
	}
	finder := leakcheck.New(raw)
	if finder.Count([]byte(strings.Join(raw[:10], ","))) != 10 {
		t.Fatal("leak finder does not find raw values")
	}
	for _, ext := range []string{".arrow", ".parquet", ".csv", ".arrows"} {
		t.Run(ext, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "masked"+ext)
			rep := maskCorpus(t, out, opts)
			if rep.RowsIn != 6000 || rep.RowsOut != 6000 {
				t.Errorf("rows in/out = %d/%d, want 6000/6000", rep.RowsIn, rep.RowsOut)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			repJSON, _ := json.Marshal(rep)
			if leaks := finder.Count(data) + finder.Count(repJSON); leaks > 0 {
				t.Errorf("%d raw identifier values found in the masked output or report", leaks)
			}
			// The masked file is readable and has the expected shape.
			var rows int64
			err = dataset.Stream(context.Background(), out, dataset.Options{}, func(r dataset.Reader, _ dataset.Format) error {
				s := r.Schema()
				if len(s.FieldIndices("name")) != 0 {
					t.Error("name column was not dropped")
				}
				for _, c := range []string{"person_id", "phone", "bank_card", "birth_date", "monthly_income"} {
					if len(s.FieldIndices(c)) != 1 {
						t.Errorf("column %s missing", c)
					}
				}
				for r.Next() {
					rows += r.Record().NumRows()
				}
				return r.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
			if rows != 6000 {
				t.Errorf("masked file has %d rows, want 6000", rows)
			}
		})
	}
}

func TestSamplingIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	opts := defaultOpts(t, "prod")
	opts.Sample = 0.25
	a := maskCorpus(t, filepath.Join(dir, "a.csv"), opts)
	maskCorpus(t, filepath.Join(dir, "b.csv"), opts)
	opts.Seed = 8
	c := maskCorpus(t, filepath.Join(dir, "c.csv"), opts)
	if a.RowsOut < 1300 || a.RowsOut > 1700 {
		t.Errorf("25%% sample kept %d of 6000 rows", a.RowsOut)
	}
	ab, _ := os.ReadFile(filepath.Join(dir, "a.csv"))
	bb, _ := os.ReadFile(filepath.Join(dir, "b.csv"))
	cb, _ := os.ReadFile(filepath.Join(dir, "c.csv"))
	if !bytes.Equal(ab, bb) {
		t.Error("same seed and key gave different samples")
	}
	if bytes.Equal(ab, cb) || c.RowsOut == 0 {
		t.Error("another seed gave the same sample")
	}
}

func TestDevProfile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dev.csv")
	rep := maskCorpus(t, out, defaultOpts(t, "dev"))
	if rep.Sample != 0.1 || rep.RowsOut > 800 || rep.RowsOut < 400 {
		t.Errorf("dev profile: sample %v, %d rows out", rep.Sample, rep.RowsOut)
	}
	ops := map[string]string{}
	for _, c := range rep.Columns {
		ops[c.Name] = c.Op
	}
	if !strings.HasPrefix(ops["monthly_income"], "noise") || !strings.HasPrefix(ops["diagnosis"], "suppress") {
		t.Errorf("dev operators: %v", ops)
	}
}

func TestFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("person_id,income\n")
	for i := 0; i < 100000; i++ {
		b.WriteString("11010519491231002X,5000\n")
	}
	b.WriteString("11010519491231002X\n") // ragged, far past the first batches
	src := filepath.Join(dir, "src.csv")
	os.WriteFile(src, []byte(b.String()), 0o600)
	cls, _ := dataset.ParseClasses("c.yaml", []byte("columns:\n  person_id: {class: identifier, pii: cn_resident_id}\n"))
	p, _ := mask.Builtin("prod")
	key, _ := mask.NewKey()
	out := filepath.Join(dir, "out.parquet")
	_, err := mask.File(context.Background(), src, out, mask.Options{Profile: p, Classes: cls, Key: key})
	if !errors.Is(err, dataset.ErrInvalidInput) || !strings.Contains(err.Error(), "line 100002") {
		t.Errorf("err = %v, want an input error at line 100002", err)
	}
	if strings.Contains(err.Error(), "11010519491231002X") {
		t.Error("error message contains a raw value")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "src.csv" {
			t.Errorf("left behind: %s", e.Name())
		}
	}

	// A classification naming a missing column is refused before writing.
	cls, _ = dataset.ParseClasses("c.yaml", []byte("columns:\n  ssn: {class: identifier}\n"))
	_, err = mask.File(context.Background(), corpusSource, out, mask.Options{Profile: p, Classes: cls, Key: key})
	if !errors.Is(err, dataset.ErrInvalidInput) || !strings.Contains(err.Error(), "c.yaml") || !strings.Contains(err.Error(), `"ssn"`) {
		t.Errorf("missing column: err = %v", err)
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Error("output written despite the error")
	}
}

func TestParseProfileErrors(t *testing.T) {
	tests := map[string]string{
		"classes:\n  identifier: {op: shred}\n":         `unknown op "shred"`,
		"classes:\n  secret: {op: drop}\n":              `unknown class "secret"`,
		"columns:\n  x: {op: noise}\n":                  "epsilon",
		"columns:\n  x: {op: round}\n":                  "step",
		"columns:\n  x: {op: generalize, to: decade}\n": `to "decade"`,
		"sample: 2\n": "sample",
		"classes:\n  sensitive:\n    numbers: {op: keep}\n": `"numbers"`,
		"columns:\n  x: {op: topcode}\n":                    "topcode needs",
		"colums: {}\n":                                      "invalid profile",
	}
	for in, want := range tests {
		_, err := mask.ParseProfile("p.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "p.yaml") {
			t.Errorf("ParseProfile(%q) = %v, want error naming p.yaml and %q", in, err, want)
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	hexKey := filepath.Join(dir, "hex")
	os.WriteFile(hexKey, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	if k, err := mask.LoadKey(hexKey); err != nil || len(k) != 32 {
		t.Errorf("hex key: %v (len %d)", err, len(k))
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too short"), 0o600)
	if _, err := mask.LoadKey(short); err == nil || !strings.Contains(err.Error(), "short") {
		t.Errorf("short key: %v", err)
	}
}

// TestTextQuasiIdentifiersConsistent: the prod profile generalises every
// text quasi-identifier consistently. A column naming the regions of a
// region-code column (district beside district_code) is dropped, since it
// would give back what generalising the codes hides; a coarser one (a
// province, of several codes each) is kept; rare categories of the rest
// are suppressed.
func TestTextQuasiIdentifiersConsistent(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "people.csv")
	var b strings.Builder
	b.WriteString("id,district_code,district,province,occupation\n")
	districts := []struct{ code, name, province string }{
		{"310104", "徐汇区", "上海"}, {"310105", "长宁区", "上海"}, {"330106", "西湖区", "浙江"}, {"330102", "上城区", "浙江"},
	}
	for i := range 400 {
		d := districts[i%len(districts)]
		occ := []string{"教师", "医护", "服务业"}[i%3]
		if i < 3 {
			occ = "宇航员" // three people: a rare category
		}
		fmt.Fprintf(&b, "P%05d,%s,%s,%s,%s\n", i, d.code, d.name, d.province, occ)
	}
	os.WriteFile(src, []byte(b.String()), 0o600)
	cls, err := dataset.ParseClasses("c.yaml", []byte(`columns:
  id: {class: identifier}
  district_code: {class: quasi_identifier}
  district: {class: quasi_identifier}
  province: {class: quasi_identifier}
  occupation: {class: quasi_identifier}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := mask.Builtin("prod")
	key, _ := mask.NewKey()
	out := filepath.Join(dir, "out.csv")
	rep, err := mask.File(context.Background(), src, out, mask.Options{Profile: p, Classes: cls, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "id,district_code,province,occupation" {
		t.Fatalf("output columns %s: want district dropped, province kept", got)
	}
	rare := 0
	for _, r := range rows[1:] {
		if len(r[1]) != 4 {
			t.Fatalf("district_code %q is not generalised to its city", r[1])
		}
		if r[3] == "宇航员" {
			t.Fatal("a category of three people was kept")
		}
		if r[3] == "OTHER" {
			rare++
		}
	}
	if rare != 3 {
		t.Errorf("%d rare occupations suppressed, want 3", rare)
	}
	changed := map[string]int64{}
	for _, c := range rep.Columns {
		changed[c.Name] = c.Changed
	}
	if changed["district_code"] != 400 || changed["occupation"] != 3 || changed["province"] != 0 {
		t.Errorf("changed counts %v: want district_code 400, occupation 3, province 0", changed)
	}
}
