package mask

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

var mem = memory.DefaultAllocator

func strArray(vals ...string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for _, v := range vals {
		if v == "<null>" {
			b.AppendNull()
		} else {
			b.Append(v)
		}
	}
	return b.NewArray()
}

func intArray(vals ...int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

func floatArray(vals ...float64) arrow.Array {
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

func dateArray(vals ...string) arrow.Array {
	b := array.NewDate32Builder(mem)
	defer b.Release()
	for _, v := range vals {
		if err := b.AppendValueFromString(v); err != nil {
			panic(err)
		}
	}
	return b.NewArray()
}

// apply compiles rule for in's type, prepares on in, and applies it.
func apply(t *testing.T, r Rule, in arrow.Array) []string {
	t.Helper()
	c, err := compile("col", in.DataType(), r, Key("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatalf("compile %+v: %v", r, err)
	}
	c.prepare(in)
	if c.needsCounts() { // the counting pre-pass of File, over this one batch
		c.cats = newCategories()
		forEachString(in, func(_ int, s string) { c.cats.id(s) })
	}
	out, err := c.newWorker(mem)(in)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if !arrow.TypeEqual(out.DataType(), c.out) {
		t.Errorf("output type %s, compiled %s", out.DataType(), c.out)
	}
	var got []string
	for i := 0; i < out.Len(); i++ {
		if out.IsNull(i) {
			got = append(got, "<null>")
		} else {
			got = append(got, out.ValueStr(i))
		}
	}
	return got
}

func f64(v float64) *float64 { return &v }

func TestOperators(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		in   arrow.Array
		want []string
	}{
		{"keep", Rule{Op: Keep}, strArray("a", "<null>"), []string{"a", "<null>"}},
		{"redact default", Rule{Op: Redact}, strArray("secret", "<null>"), []string{"***", "<null>"}},
		{"redact value", Rule{Op: Redact, Value: "X"}, intArray(1, 2), []string{"X", "X"}},
		{"partial", Rule{Op: Partial, KeepFirst: 3, KeepLast: 4}, strArray("13812345678"), []string{"138****5678"}},
		{"partial han", Rule{Op: Partial, KeepFirst: 1}, strArray("欧阳娜娜"), []string{"欧***"}},
		{"partial never reveals all", Rule{Op: Partial, KeepFirst: 3, KeepLast: 3}, strArray("abcd"), []string{"****"}},
		{"generalize date year", Rule{Op: Generalize}, dateArray("1990-08-08", "2003-03-06"), []string{"1990", "2003"}},
		{"generalize date month", Rule{Op: Generalize, To: "month"}, dateArray("1990-08-08"), []string{"1990-08"}},
		{"generalize region auto", Rule{Op: Generalize}, strArray("410105", "130703", "<null>"), []string{"4101", "1307", "<null>"}},
		{"generalize text auto keeps", Rule{Op: Generalize}, strArray("本科", "高中"), []string{"本科", "高中"}},
		{"generalize prefix", Rule{Op: Generalize, To: "prefix", Length: 2}, strArray("410105", "金水区"), []string{"41", "金水"}},
		{"generalize int band", Rule{Op: Generalize, Width: 10}, intArray(34, 40, -1), []string{"30-39", "40-49", "-10--1"}},
		{"generalize float band", Rule{Op: Generalize, To: "band", Width: 0.5}, floatArray(1.2), []string{"[1,1.5)"}},
		{"round int", Rule{Op: Round, Step: 100}, intArray(3840, 3851), []string{"3800", "3900"}},
		{"round float", Rule{Op: Round, Step: 0.1}, floatArray(1.26), []string{"1.3"}},
		{"topcode", Rule{Op: TopCode, Top: f64(5000), Bottom: f64(1000)}, intArray(200, 3000, 90000), []string{"1000", "3000", "5000"}},
		{"suppress", Rule{Op: Suppress, K: 2}, strArray("a", "a", "b", "<null>"), []string{"a", "a", "OTHER", "<null>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := apply(t, tc.rule, tc.in)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPseudonym(t *testing.T) {
	in := strArray("11010519491231002X", "11010519491231002x", "110105 19491231 002X", "13812345678", "<null>")
	got := apply(t, Rule{Op: Pseudonym}, in)
	if got[0] != got[1] || got[0] != got[2] {
		t.Errorf("spellings of one ID got different pseudonyms: %v", got[:3])
	}
	if got[0] == got[3] {
		t.Error("different values got the same pseudonym")
	}
	if !strings.HasPrefix(got[0], DefaultPseudonymPrefix) || len(got[0]) != len(DefaultPseudonymPrefix)+24 {
		t.Errorf("pseudonym %q: want %s + 24 hex digits", got[0], DefaultPseudonymPrefix)
	}
	if got[4] != "<null>" {
		t.Errorf("null became %q", got[4])
	}
	// Another key gives unlinkable pseudonyms.
	c, _ := compile("col", in.DataType(), Rule{Op: Pseudonym, Prefix: "p:"}, Key("another key of at least 32 bytes!"))
	out, _ := c.newWorker(mem)(in)
	if v := out.ValueStr(0); v == got[0] || !strings.HasPrefix(v, "p:") {
		t.Errorf("other key/prefix gave %q (first key: %q)", v, got[0])
	}
	// Without a key, pseudonyms cannot be compiled.
	if _, err := compile("col", in.DataType(), Rule{Op: Pseudonym}, nil); err == nil {
		t.Error("pseudonym without key compiled")
	}
}

func TestNoise(t *testing.T) {
	const n = 2000
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = 5000
	}
	got := apply(t, Rule{Op: Noise, Epsilon: 1, Sensitivity: 100}, floatArray(vals...))
	var sum, changed float64
	for _, s := range got {
		var x float64
		if _, err := fmt.Sscan(s, &x); err != nil {
			t.Fatal(err)
		}
		sum += x
		if x != 5000 {
			changed++
		}
	}
	mean := sum / n
	// Laplace(b=100) has standard deviation 141; the mean of 2000 draws is
	// within 5 standard errors (16) of the true value with near certainty.
	if math.Abs(mean-5000) > 16 {
		t.Errorf("mean of noised values %.1f, want about 5000", mean)
	}
	if changed < n*0.99 {
		t.Errorf("only %.0f of %d values changed", changed, n)
	}
	// Integer columns stay integers.
	ints := apply(t, Rule{Op: Noise, Epsilon: 1}, intArray(100, 200, 300))
	for _, s := range ints {
		if strings.ContainsAny(s, ".e") {
			t.Errorf("noised integer printed as %q", s)
		}
	}
}

func TestCompileRejectsWrongTypes(t *testing.T) {
	tests := []struct {
		rule Rule
		typ  arrow.DataType
	}{
		{Rule{Op: Noise, Epsilon: 1}, arrow.BinaryTypes.String},
		{Rule{Op: Round, Step: 1}, arrow.FixedWidthTypes.Date32},
		{Rule{Op: Generalize, To: "year"}, arrow.BinaryTypes.String},
		{Rule{Op: Generalize, To: "band", Width: 1}, arrow.FixedWidthTypes.Date32},
	}
	for _, tc := range tests {
		_, err := compile("income", tc.typ, tc.rule, nil)
		if err == nil || !strings.Contains(err.Error(), `"income"`) {
			t.Errorf("compile(%+v, %s) = %v, want an error naming the column", tc.rule, tc.typ, err)
		}
	}
}

func TestKeyNeverPrints(t *testing.T) {
	k := Key("super-secret-key-material-000000")
	for _, s := range []string{k.String(), fmt.Sprint(k), fmt.Sprintf("%v %s %+v %#v %x", k, k, k, k, k)} {
		if strings.Contains(s, "super") || strings.Contains(s, "7375706572") {
			t.Errorf("key leaked: %q", s)
		}
	}
}
