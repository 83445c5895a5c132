package egress_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/demodata"
	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/egress"
	"github.com/sluicehq/sluice/internal/leakcheck"
	"github.com/sluicehq/sluice/policy"
)

// These tests use a source the corpus does not have (synthetic residents
// from demo-data, seed 5) and products written here, to show that the
// detectors hold for any source and product of the same kind.

type fixture struct {
	dir    string
	source string
	rows   [][]string // source rows, header first
	col    map[string]int
	gate   *egress.Gate
	ix     *egress.Index
	pol    *policy.Engine
}

var fx *fixture

func setup(t *testing.T) *fixture {
	t.Helper()
	if fx != nil {
		return fx
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sluice-egress-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := demodata.Write(ctx, dir, 3000, 5, dataset.CSV); err != nil {
		t.Fatal(err)
	}
	src, _ := demodata.Files(dir, dataset.CSV)
	f, _ := os.Open(src)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	ix, err := egress.BuildIndex(ctx, src, nil, dataset.Options{}) // classification inferred
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Default(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fx = &fixture{dir: dir, source: src, rows: rows, col: col, ix: ix, pol: pol, gate: egress.NewGate(ix, pol)}
	return fx
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fx != nil {
		os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

func (f *fixture) values(name string) []string {
	var out []string
	for _, r := range f.rows[1:] {
		out = append(out, r[f.col[name]])
	}
	return out
}

func (f *fixture) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) check(t *testing.T, path string) *egress.Result {
	t.Helper()
	res, err := f.gate.Check(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func hasFinding(res *egress.Result, detector string) bool {
	for _, fd := range res.Findings {
		if fd.Detector == detector && fd.Severity != egress.Info {
			return true
		}
	}
	return false
}

func expect(t *testing.T, res *egress.Result, decision, detector string) {
	t.Helper()
	if res.Decision.Decision != decision || (detector != "" && !hasFinding(res, detector)) {
		var lines []string
		for _, fd := range res.Findings {
			lines = append(lines, fd.String())
		}
		t.Errorf("decision %s, want %s with a %s finding:\n  %s", res.Decision.Decision, decision, detector, strings.Join(lines, "\n  "))
	}
}

func TestIdentifiersInAnyForm(t *testing.T) {
	f := setup(t)
	ids, phones, cards := f.values("person_id"), f.values("phone"), f.values("bank_card")
	sha := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	reversed := func(s string) string {
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r)
	}
	tests := []struct {
		name, file, content, detector string
	}{
		{"phone in nested JSON", "out.json", fmt.Sprintf(`{"debug": {"sample": [{"note": "call %s"}]}}`, phones[7]), egress.DetRawValue},
		{"full-width ID in text", "notes.txt", "id：" + toFullWidth(ids[3]) + "\n", egress.DetRawValue},
		{"spaced phone cell", "t.csv", "contact,n\n" + phones[1][:3] + " " + phones[1][3:7] + " " + phones[1][7:] + ",1\n", egress.DetRawValue},
		{"sha256 base64", "t.csv", "key,v\n" + base64.StdEncoding.EncodeToString(sha(ids[0])) + ",1\n" + base64.StdEncoding.EncodeToString(sha(ids[1])) + ",2\n", egress.DetEncodedValue},
		{"sha256 hex upper", "t.tsv", "key\tv\n" + strings.ToUpper(hex.EncodeToString(sha(cards[2]))) + "\t1\n", egress.DetEncodedValue},
		{"hex of ID", "log.log", "token=" + hex.EncodeToString([]byte(ids[9])) + "\n", egress.DetEncodedValue},
		{"reversed card", "r.md", "# cards\n\n- " + reversed(cards[4]) + "\n", egress.DetEncodedValue},
		{"URL base64 in JSONL", "r.jsonl", `{"t": "` + base64.RawURLEncoding.EncodeToString([]byte(phones[5])) + `"}` + "\n", egress.DetEncodedValue},
		{"ID not in the source", "x.log", "user 11010519491231002X failed\n", egress.DetPIIPattern},
		{"e-mail", "x.txt", "contact zhang.wei@example.com.cn\n", egress.DetPIIPattern},
	}
	finder := leakcheck.New(append(append(ids, phones...), cards...))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := f.check(t, f.write(t, tc.file, tc.content))
			expect(t, res, "deny", tc.detector)
			for _, fd := range res.Findings {
				if finder.Count([]byte(fd.Message+fd.Column+fd.Location+fd.Kind)) > 0 {
					t.Errorf("finding carries a raw value: %s", fd)
				}
			}
		})
	}
}

func toFullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '!' && r <= '~' {
			r += 0xFEE0
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestPseudonymsAreLinkable(t *testing.T) {
	f := setup(t)
	cls, _ := dataset.ParseClasses("c.yaml", []byte("columns:\n  person_id: {class: identifier, pii: cn_resident_id}\n"))
	prof, _ := mask.Builtin("prod")
	key, _ := mask.NewKey()
	out := filepath.Join(t.TempDir(), "masked.csv")
	if _, err := mask.File(context.Background(), f.source, out, mask.Options{Profile: prof, Classes: cls, Key: key, Sample: 0.02, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	expect(t, f.check(t, out), "deny", egress.DetPseudonym)
}

// groupBy computes an aggregate of the fixture source in Go.
func (f *fixture) groupBy(keys []string, agg func(rows [][]string) string) [][]string {
	groups := map[string][][]string{}
	for _, r := range f.rows[1:] {
		var k []string
		for _, c := range keys {
			k = append(k, r[f.col[c]])
		}
		groups[strings.Join(k, ",")] = append(groups[strings.Join(k, ",")], r)
	}
	var out [][]string
	for k, rows := range groups {
		out = append(out, append(strings.Split(k, ","), agg(rows)))
	}
	sort.Slice(out, func(i, j int) bool { return strings.Join(out[i], ",") < strings.Join(out[j], ",") })
	return out
}

func table(header string, rows [][]string) string {
	var b strings.Builder
	b.WriteString(header + "\n")
	for _, r := range rows {
		b.WriteString(strings.Join(r, ",") + "\n")
	}
	return b.String()
}

func TestAggregates(t *testing.T) {
	f := setup(t)
	count := func(rows [][]string) string { return strconv.Itoa(len(rows)) }
	income := func(rows [][]string, pick func(a, b int) bool) string {
		best := -1
		for _, r := range rows {
			x, _ := strconv.Atoi(r[f.col["monthly_income"]])
			if best < 0 || pick(x, best) {
				best = x
			}
		}
		return strconv.Itoa(best)
	}
	mean := func(rows [][]string) string {
		s := 0.0
		for _, r := range rows {
			x, _ := strconv.ParseFloat(r[f.col["monthly_income"]], 64)
			s += x
		}
		return strconv.FormatFloat(s/float64(len(rows)), 'f', 2, 64)
	}
	// Birth year and month as an analyst would derive them.
	t.Run("large groups allowed", func(t *testing.T) {
		res := f.check(t, f.write(t, "p.csv", table("education,gender,people", f.groupBy([]string{"education", "gender"}, count))))
		for _, fd := range res.Findings {
			if fd.Severity != egress.Info {
				t.Errorf("unexpected %s", fd)
			}
		}
		expect(t, res, "allow", "")
	})
	t.Run("min income by education is an extreme", func(t *testing.T) {
		rows := f.groupBy([]string{"education"}, func(r [][]string) string { return income(r, func(a, b int) bool { return a < b }) })
		expect(t, f.check(t, f.write(t, "p.csv", table("education,lowest", rows))), "deny", egress.DetExtreme)
	})
	t.Run("mean over fine groups without counts", func(t *testing.T) {
		rows := f.groupBy([]string{"district", "occupation", "birth_date"}, mean)
		expect(t, f.check(t, f.write(t, "p.csv", table("district,occupation,birth_date,avg", rows))), "deny", egress.DetGroupSize)
	})
	t.Run("small counts", func(t *testing.T) {
		rows := f.groupBy([]string{"diagnosis", "district"}, count)
		expect(t, f.check(t, f.write(t, "p.csv", table("diagnosis,district,n", rows))), "deny", egress.DetSmallCell)
	})
	t.Run("grouped by a derived form (city prefix)", func(t *testing.T) {
		agg := map[string]int{}
		for _, r := range f.rows[1:] {
			agg[r[f.col["district_code"]][:4]+","+r[f.col["diagnosis"]]+","+r[f.col["education"]]]++
		}
		var rows [][]string
		for k, n := range agg {
			rows = append(rows, append(strings.Split(k, ","), strconv.Itoa(n)))
		}
		res := f.check(t, f.write(t, "p.csv", table("city,diagnosis,education,total", rows)))
		expect(t, res, "deny", egress.DetGroupSize)
		grounded := false
		for _, fd := range res.Findings {
			grounded = grounded || strings.Contains(fd.SourceColumn, "district_code (prefix4)")
		}
		if !grounded {
			t.Errorf("city not grounded in the district_code prefix: %+v", res.Findings)
		}
	})
}

func TestDominance(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("company_id,industry,revenue\n")
	r := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < 400; i++ {
		ind := []string{"mining", "retail", "software", "farming"}[i%4]
		rev := 100 + r.IntN(50)
		if i == 2 { // one giant in software
			rev = 1000000
		}
		fmt.Fprintf(&b, "C%05d,%s,%d\n", i, ind, rev)
	}
	src := filepath.Join(dir, "companies.csv")
	os.WriteFile(src, []byte(b.String()), 0o600)
	cls, _ := dataset.ParseClasses("c.yaml", []byte("columns:\n  company_id: {class: identifier}\n  industry: {class: quasi_identifier}\n  revenue: {class: sensitive}\n"))
	ix, err := egress.BuildIndex(ctx, src, cls, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := policy.Default(ctx)
	sums := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(b.String()), "\n")[1:] {
		p := strings.Split(line, ",")
		v, _ := strconv.Atoi(p[2])
		sums[p[1]] += v
		_ = i
	}
	var out strings.Builder
	out.WriteString("industry,total_revenue\n")
	for _, k := range []string{"farming", "mining", "retail", "software"} {
		fmt.Fprintf(&out, "%s,%d\n", k, sums[k])
	}
	prod := filepath.Join(dir, "sums.csv")
	os.WriteFile(prod, []byte(out.String()), 0o600)
	res, err := egress.NewGate(ix, pol).Check(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, res, "deny", egress.DetDominance)
}

func TestRowLevel(t *testing.T) {
	f := setup(t)
	t.Run("affine with negative slope, shuffled", func(t *testing.T) {
		inc := f.values("monthly_income")
		r := rand.New(rand.NewPCG(9, 9))
		r.Shuffle(len(inc), func(i, j int) { inc[i], inc[j] = inc[j], inc[i] })
		var b strings.Builder
		b.WriteString("index\n")
		for _, v := range inc {
			x, _ := strconv.ParseFloat(v, 64)
			fmt.Fprintf(&b, "%.2f\n", 1e4-0.37*x)
		}
		expect(t, f.check(t, f.write(t, "p.csv", b.String())), "deny", egress.DetAffine)
	})
	t.Run("quasi-identifiers with a diagnosis", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("birth,sex,region,dx\n")
		for _, r := range f.rows[1:1001] {
			fmt.Fprintf(&b, "%s,%s,%s,%s\n", r[f.col["birth_date"]][:7], r[f.col["gender"]], r[f.col["district"]], r[f.col["diagnosis"]])
		}
		res := f.check(t, f.write(t, "p.csv", b.String()))
		expect(t, res, "deny", egress.DetKAnonymity)
	})
	t.Run("coarse quasi-identifiers go to two reviewers", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("sex,level\n")
		for _, r := range f.rows[1:2001] {
			fmt.Fprintf(&b, "%s,%s\n", r[f.col["gender"]], r[f.col["education"]])
		}
		res := f.check(t, f.write(t, "p.csv", b.String()))
		if res.Decision.Decision != "review" || res.Decision.Approvals != 2 {
			t.Errorf("row-level product with large classes: %+v", res.Decision)
		}
	})
}

func TestDifferencingJSONL(t *testing.T) {
	f := setup(t)
	counts := f.groupBy([]string{"education"}, func(r [][]string) string { return strconv.Itoa(len(r)) })
	var released, current strings.Builder
	for i, r := range counts {
		n, _ := strconv.Atoi(r[1])
		fmt.Fprintf(&released, `{"education": %q, "count": %d}`+"\n", r[0], n)
		if i == 2 {
			n -= 2 // the same table, two people fewer
		}
		fmt.Fprintf(&current, `{"education": %q, "count": %d}`+"\n", r[0], n)
	}
	ctx := context.Background()
	rel := f.write(t, "released.jsonl", released.String())
	cur := f.write(t, "current.jsonl", current.String())
	g := egress.NewGate(f.ix, f.pol)
	if err := g.AddReleased(ctx, rel); err != nil {
		t.Fatal(err)
	}
	res, err := g.Check(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, res, "deny", egress.DetDifferencing)
	// Without the ledger the same table is fine.
	expect(t, f.check(t, cur), "allow", "")
}

func TestFileTypes(t *testing.T) {
	f := setup(t)
	tests := []struct{ name, content, want string }{
		{"plot.png", "\x89PNG\r\n\x1a\n....", "review"},
		{"model.pkl", "\x80\x04\x95....", "review"},
		{"bundle.zip", "PK\x03\x04....", "deny"},
		{"blob.bin", "\x00\x01\x02\x03\xff", "deny"},
		{"disguised.csv", "PK\x03\x04 a zip named .csv", "deny"},
		{"broken.json", `{"a": [1, 2`, "deny"},
		{"ragged.csv", "a,b\n1\n", "deny"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := f.check(t, f.write(t, tc.name, tc.content))
			if res.Decision.Decision != tc.want {
				t.Errorf("decision %s, want %s: %+v", res.Decision.Decision, tc.want, res.Findings)
			}
		})
	}
	th := map[string]any{"max_file_bytes": 100}
	g := egress.NewGate(f.ix, f.pol).WithScenarioThresholds(th)
	res, err := g.Check(context.Background(), f.write(t, "big.txt", strings.Repeat("fine text\n", 50)))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, res, "deny", egress.DetFileSize)
}

// TestDifferencingRecordSets: a city count is released; a new table gives
// the count of the city's large district only. The tables have different
// keys and no count differs in a matching row, but as sets of source
// records the two groups differ by the three people of the small district.
func TestDifferencingRecordSets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("id,district_code,income\n")
	for i := 0; i < 503; i++ {
		code := "410105"
		if i%200 == 7 { // three people in a small district of the same city
			code = "410102"
		}
		fmt.Fprintf(&b, "P%04d,%s,%d\n", i, code, 3000+i)
	}
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, "Q%04d,130105,%d\n", i, 3000+i)
	}
	src := filepath.Join(dir, "people.csv")
	os.WriteFile(src, []byte(b.String()), 0o600)
	cls, _ := dataset.ParseClasses("c.yaml", []byte("columns:\n  id: {class: identifier}\n  district_code: {class: quasi_identifier}\n  income: {class: sensitive}\n"))
	ix, err := egress.BuildIndex(ctx, src, cls, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := policy.Default(ctx)
	released := filepath.Join(dir, "by_city.csv")
	os.WriteFile(released, []byte("city,people\n4101,503\n1301,400\n"), 0o600)
	product := filepath.Join(dir, "by_district.csv")
	os.WriteFile(product, []byte("district_code,people\n410105,500\n130105,400\n"), 0o600)
	g := egress.NewGate(ix, pol)
	if err := g.AddReleased(ctx, released); err != nil {
		t.Fatal(err)
	}
	res, err := g.Check(ctx, product)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, fd := range res.Findings {
		found = found || (fd.Detector == egress.DetDifferencing && fd.Kind == "record sets" && fd.Value == 3)
	}
	if !found || res.Decision.Decision != "deny" {
		t.Errorf("want a record-set differencing finding of 3 and deny; got %s: %+v", res.Decision.Decision, res.Findings)
	}
	// Without the ledger the same table passes.
	res, _ = egress.NewGate(ix, pol).Check(ctx, product)
	if res.Decision.Decision != "allow" {
		t.Errorf("without released products: %s %+v", res.Decision.Decision, res.Findings)
	}
}

// TestFindingsNeverCarryValues: column names and JSON keys are the
// analyst's; when they are raw identifiers, findings name them redacted.
func TestFindingsNeverCarryValues(t *testing.T) {
	f := setup(t)
	ids, phones := f.values("person_id"), f.values("phone")
	products := map[string]string{
		"cols.csv":  ids[0] + "," + phones[0] + "\n1,2\n3,4\n",
		"keys.json": `{"` + ids[1] + `": {"` + phones[1] + `": [1, 2]}}`,
		"rows.csv":  "district," + ids[2] + "\n" + f.rows[1][f.col["district"]] + ",1\n",
	}
	finder := leakcheck.New(append(ids, phones...))
	for name, content := range products {
		res := f.check(t, f.write(t, name, content))
		if res.Decision.Decision != "deny" {
			t.Errorf("%s: %s", name, res.Decision.Decision)
		}
		doc, _ := json.Marshal(res)
		in, _ := json.Marshal(res.Input)
		if n := finder.Count(append(doc, in...)); n > 0 {
			t.Errorf("%s: result or policy input carries %d raw values:\n%s", name, n, doc)
		}
	}
}
