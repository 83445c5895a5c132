package egress_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/egress"
	"github.com/sluicehq/sluice/internal/corrupt"
)

// fuzzParse writes data as a product with the given extension and checks
// that parsing never panics and that a product that cannot be read is never
// allowed.
func fuzzParse(f *testing.F, ext string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fx := setup(t)
		p := filepath.Join(t.TempDir(), "product"+ext)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		prod, err := egress.Parse(context.Background(), p, egress.ParseOptions{MaxBytes: 1 << 20, MaxRows: 10000})
		if err != nil {
			t.Fatalf("I/O error on a readable file: %v", err)
		}
		res, err := fx.gate.Check(context.Background(), p)
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		if prod.ParseError != "" && res.Decision.Decision == "allow" {
			t.Fatalf("unreadable product allowed: %s", prod.ParseError)
		}
		for _, f := range res.Findings {
			if f.Detector == egress.DetParseError && res.Decision.Decision == "allow" {
				t.Fatal("parse error allowed")
			}
		}
	})
}

func FuzzCSV(f *testing.F) {
	fuzzParse(f, ".csv", "a,b\n1,2\n", "district,n\n金水区,600\n", "a,\"b\n1,2", "x\n\xff\xfe\n", "a,b\n1\n")
}

func FuzzTSV(f *testing.F) {
	fuzzParse(f, ".tsv", "a\tb\n1\t2\n", "a\t\"b\n")
}

func FuzzJSON(f *testing.F) {
	fuzzParse(f, ".json", `{"n": 6000, "coef": {"a": 1.5}}`, `[{"a": 1}, {"a": 2, "b": "x"}]`, `[1, [2, {"c": null}]]`, `{"a": `, "\x00")
}

func FuzzJSONL(f *testing.F) {
	fuzzParse(f, ".jsonl", "{\"a\": 1}\n{\"a\": 2}\n", "{\"a\": 1}\nnot json\n", "[1]\n")
}

func FuzzMarkdown(f *testing.F) {
	fuzzParse(f, ".md", "# t\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", "| a |\n|\n|", "text\n")
}

func FuzzText(f *testing.F) {
	fuzzParse(f, ".log", "processing 410105200303068329 ok\n", "token=abc== x:y", "\xef\xbc\x91\xef\xbc\x92")
}

// binarySeeds returns a small valid file of the format, and its truncations.
func binarySeeds(f *testing.F, format string) []string {
	dir := f.TempDir()
	src := filepath.Join(dir, "p.csv")
	os.WriteFile(src, []byte("district,n\n金水区,600\n中原区,12\n"), 0o600)
	out := filepath.Join(dir, "p."+format)
	if _, _, err := dataset.Convert(context.Background(), src, dataset.Options{}, out); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	return []string{string(b), string(b[:len(b)/2]), string(b[:len(b)-8])}
}

func FuzzParquet(f *testing.F) {
	fuzzParse(f, ".parquet", binarySeeds(f, "parquet")...)
}

func FuzzArrow(f *testing.F) {
	fuzzParse(f, ".arrow", binarySeeds(f, "arrow")...)
}

// TestCorruptBinaryProducts flips bytes of valid Parquet and Arrow files:
// every variant must parse to a table or an error finding — never crash the
// process (corrupt metadata once made the Arrow decoder allocate hundreds of
// gigabytes) and never be allowed when unreadable.
func TestCorruptBinaryProducts(t *testing.T) {
	fx := setup(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "p.csv")
	os.WriteFile(src, []byte("district,n\n金水区,600\n中原区,12\n"), 0o600)
	for _, ext := range []string{"arrow", "parquet", "arrows"} {
		out := filepath.Join(dir, "p."+ext)
		if _, _, err := dataset.Convert(context.Background(), src, dataset.Options{}, out); err != nil {
			t.Fatal(err)
		}
		corrupt.Variants(t, out, dir, 1, 400, func(i int, p string) {
			prod, err := egress.Parse(context.Background(), p, egress.ParseOptions{MaxBytes: 1 << 20, MaxRows: 10000})
			if err != nil {
				t.Fatal(err)
			}
			res, err := fx.gate.Check(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if prod.ParseError != "" && res.Decision.Decision == "allow" {
				t.Fatalf("%s variant %d unreadable but allowed", ext, i)
			}
		})
	}
}
