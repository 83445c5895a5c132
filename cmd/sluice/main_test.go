package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/leakcheck"
)

const (
	corpusSource  = "../../../shared/egress-corpus/sources/residents.csv"
	corpusClasses = "../../../shared/egress-corpus/sources/residents.classes.yaml"
)

func sluice(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestClassifyCorpus(t *testing.T) {
	code, out, errs := sluice(t, "dataset", "classify", corpusSource)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"person_id: {class: identifier, pii: cn_resident_id",
		"phone: {class: identifier, pii: cn_mobile",
		"bank_card: {class: identifier, pii: bank_card",
		"name: {class: identifier, pii: person_name",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("classification lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectJSON(t *testing.T) {
	code, out, errs := sluice(t, "dataset", "inspect", "-o", "json", corpusSource)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		Rows    int64 `json:"rows"`
		Columns []struct {
			Name string `json:"name"`
			PII  []struct {
				Kind string  `json:"kind"`
				Rate float64 `json:"rate"`
			} `json:"pii"`
		} `json:"columns"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inspect JSON: %v\n%s", err, out)
	}
	if doc.Rows != 6000 || len(doc.Columns) != 13 {
		t.Errorf("rows %d, columns %d", doc.Rows, len(doc.Columns))
	}
	if c := doc.Columns[0]; c.Name != "person_id" || len(c.PII) == 0 || c.PII[0].Kind != "cn_resident_id" || c.PII[0].Rate != 1 {
		t.Errorf("person_id profile: %+v", c)
	}
}

func TestMaskCorpus(t *testing.T) {
	out := filepath.Join(t.TempDir(), "masked.arrow")
	code, stdout, errs := sluice(t, "dataset", "mask", "--source", corpusSource, "--classes", corpusClasses, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(stdout, "6000 rows in, 6000 rows out") {
		t.Errorf("summary: %s", stdout)
	}
	if !strings.Contains(errs, "random key") {
		t.Errorf("no warning about the missing key: %q", errs)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	ragged := write("ragged.csv", "a,b\n1,2\n3\n")
	badClasses := write("bad.classes.yaml", "columns:\n  nosuch: {class: identifier}\n")
	out := filepath.Join(dir, "out.arrow")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown command", []string{"frobnicate"}, 2, []string{"unknown command"}},
		{"unknown flag", []string{"dataset", "inspect", "--nope", ragged}, 2, []string{"--nope"}},
		{"missing arg", []string{"dataset", "inspect"}, 2, []string{"one FILE"}},
		{"bad -o", []string{"dataset", "inspect", "-o", "xml", corpusSource}, 2, []string{"xml"}},
		{"missing file", []string{"dataset", "inspect", filepath.Join(dir, "nope.csv")}, 2, []string{"nope.csv", "no such file"}},
		{"ragged", []string{"dataset", "inspect", ragged}, 2, []string{"ragged.csv", "line 3"}},
		{"mask missing flags", []string{"dataset", "mask", "--source", corpusSource}, 2, []string{"--classes"}},
		{"mask bad out ext", []string{"dataset", "mask", "--source", corpusSource, "--classes", corpusClasses, "--out", filepath.Join(dir, "x.xlsx")}, 2, []string{"--out"}},
		{"mask missing column", []string{"dataset", "mask", "--source", corpusSource, "--classes", badClasses, "--out", out}, 2, []string{"bad.classes.yaml", `"nosuch"`}},
		{"mask ragged", []string{"dataset", "mask", "--source", ragged, "--classes", badClasses, "--out", out}, 2, []string{"ragged.csv"}},
		{"mask bad sample", []string{"dataset", "mask", "--source", corpusSource, "--classes", corpusClasses, "--sample", "1.5", "--out", out}, 2, []string{"--sample"}},
		{"demo-data rows", []string{"demo-data", "--rows", "0", "--out", dir}, 2, []string{"--rows"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := sluice(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errs)
			}
			if n := strings.Count(strings.TrimSpace(errs), "\n"); n > 0 {
				t.Errorf("error is %d lines, want one: %q", n+1, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q lacks %q", errs, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("partial output %s left behind", out)
			}
		})
	}
}

func TestDemoDataDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if code, _, errs := sluice(t, "demo-data", "--rows", "200", "--out", d, "--seed", "42"); code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
	}
	for _, f := range []string{"residents.csv", "enterprises.csv"} {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between runs with the same seed", f)
		}
	}
	// The generated identifiers are found by classification.
	code, out, _ := sluice(t, "dataset", "classify", filepath.Join(a, "enterprises.csv"))
	if code != 0 || !strings.Contains(out, "credit_code: {class: identifier, pii: cn_credit_code") || !strings.Contains(out, "legal_rep_id: {class: identifier, pii: cn_resident_id") {
		t.Errorf("enterprise classification:\n%s", out)
	}
}

// TestNoRawValueInOutput runs every dataset command on the corpus source and
// searches everything printed for the raw values of its identifier columns.
func TestNoRawValueInOutput(t *testing.T) {
	data, err := os.ReadFile(corpusSource)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var raw []string
	for _, r := range rows[1:] {
		raw = append(raw, r[0], r[1], r[2], r[3]) // person_id, name, phone, bank_card
	}
	finder := leakcheck.New(raw)
	dir := t.TempDir()
	runs := [][]string{
		{"dataset", "inspect", corpusSource},
		{"dataset", "inspect", "-o", "json", corpusSource},
		{"dataset", "classify", corpusSource},
		{"dataset", "mask", "--source", corpusSource, "--classes", corpusClasses, "--out", filepath.Join(dir, "m.csv")},
		{"dataset", "mask", "--source", corpusSource, "--classes", corpusClasses, "--profile", "dev", "-o", "json", "--out", filepath.Join(dir, "d.csv")},
	}
	for _, args := range runs {
		code, stdout, stderr := sluice(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if n := finder.Count([]byte(stdout + stderr)); n > 0 {
			t.Errorf("%v printed %d raw identifier values", args, n)
		}
	}
	for _, f := range []string{"m.csv", "d.csv"} {
		out, _ := os.ReadFile(filepath.Join(dir, f))
		if n := finder.Count(out); n > 0 {
			t.Errorf("%s holds %d raw identifier values", f, n)
		}
	}
}

// TestPackagesDocumented checks that every package says what it is for.
func TestPackagesDocumented(t *testing.T) {
	root := "../.."
	documented := map[string]bool{} // directory -> has a package comment
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		documented[dir] = documented[dir] || (f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(documented) < 5 {
		t.Fatalf("found only %d packages under %s", len(documented), root)
	}
	for dir, ok := range documented {
		if !ok {
			t.Errorf("package in %s has no doc comment", dir)
		}
	}
}

func TestEgressCheckExitCodes(t *testing.T) {
	c := "../../../shared/egress-corpus/cases/"
	base := []string{"egress", "check", "--source", corpusSource, "--classes", corpusClasses}
	rowLevel := filepath.Join(t.TempDir(), "rows.csv")
	var b strings.Builder
	b.WriteString("gender,education\n")
	data, _ := os.ReadFile(corpusSource)
	rows, _ := csv.NewReader(bytes.NewReader(data)).ReadAll()
	for _, r := range rows[1:] {
		b.WriteString(r[4] + "," + r[8] + "\n")
	}
	os.WriteFile(rowLevel, []byte(b.String()), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"allow", append(append([]string{}, base...), c+"allow-count-by-district/product.csv"), 0, "ALLOW"},
		{"deny", append(append([]string{}, base...), c+"block-raw-rows/product.csv", c+"allow-count-by-district/product.csv"), 1, "DENY"},
		{"review", append(append([]string{}, base...), rowLevel), 3, "REVIEW (2 approval(s) needed)"},
		{"differencing", append(append([]string{}, base...), "--released", c+"block-differencing/released", c+"block-differencing/product.csv"), 1, "differencing"},
		{"no product", base, 2, ""},
		{"missing product", append(append([]string{}, base...), "/nonexistent.csv"), 2, ""},
		{"bad policy dir", append(append([]string{}, base...), "--policy", "/nonexistent", c+"allow-count-by-district/product.csv"), 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := sluice(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d (want %d), stdout:\n%s\nstderr: %s", code, tc.code, out, errs)
			}
		})
	}
}

func TestPolicyCommands(t *testing.T) {
	code, out, _ := sluice(t, "policy", "test")
	if code != 0 || !strings.Contains(out, "0 failed") {
		t.Errorf("policy test: exit %d\n%s", code, out)
	}
	// Record inputs, then replay a stricter candidate.
	rec := t.TempDir()
	c := "../../../shared/egress-corpus/cases/"
	sluice(t, "egress", "check", "--source", corpusSource, "--classes", corpusClasses, "--record-inputs", rec, c+"allow-count-by-district/product.csv", c+"block-raw-rows/product.csv")
	cand := t.TempDir()
	for _, f := range []string{"egress.rego", "data.json"} {
		data, _ := os.ReadFile(filepath.Join("../../policy/rego", f))
		if f == "data.json" {
			data = bytes.Replace(data, []byte(`"min_group_size": 10`), []byte(`"min_group_size": 1000`), 1)
		}
		os.WriteFile(filepath.Join(cand, f), data, 0o600)
	}
	code, out, errs := sluice(t, "policy", "replay", "--policy", cand, "--inputs", rec)
	if code != 0 || !strings.Contains(out, "2 inputs, 1 decisions change") || !strings.Contains(out, "allow -> deny group_size") {
		t.Errorf("replay: exit %d\n%s%s", code, out, errs)
	}
	entries, _ := os.ReadDir(rec)
	code, out, _ = sluice(t, "policy", "eval", "--input", filepath.Join(rec, entries[0].Name()))
	if code != 0 || !strings.Contains(out, `"decision"`) {
		t.Errorf("eval: exit %d\n%s", code, out)
	}
	// Recorded inputs hold no raw values.
	var raw []string
	data, _ := os.ReadFile(corpusSource)
	rows, _ := csv.NewReader(bytes.NewReader(data)).ReadAll()
	for _, r := range rows[1:] {
		raw = append(raw, r[0], r[1], r[2], r[3])
	}
	finder := leakcheck.New(raw)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(rec, e.Name()))
		if n := finder.Count(b); n > 0 {
			t.Errorf("recorded input %s holds %d raw values", e.Name(), n)
		}
	}
}
