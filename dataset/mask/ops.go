package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/sluicehq/sluice/dataset/pii"
)

// DefaultPseudonymPrefix tags pseudonyms so that they are recognisable in
// outputs (and by the egress gate).
const DefaultPseudonymPrefix = "psn_"

// pseudonymBytes is how much of the HMAC a pseudonym keeps (96 bits).
const pseudonymBytes = 12

// column is a compiled rule for one input column. prepare runs once, on the
// first batch, before any worker starts; newWorker gives each worker its own
// mutable state.
type column struct {
	name    string
	rule    Rule
	in, out arrow.DataType // out is nil when dropped
	mode    string         // the resolved variant, e.g. "year", "prefix:4"
	changed atomic.Int64   // values the operator replaced or removed

	// parameters resolved by compile or prepare
	prefixLen   int
	band        float64
	sensitivity float64
	cats        *categories // suppress: category sizes from the pre-pass
	labelOf     string      // generalize "label": the region-code column it names
	key         Key
}

func (c *column) dropped() bool { return c.out == nil }

type applyFunc func(in arrow.Array) (arrow.Array, error)

var stringType = arrow.BinaryTypes.String

// compile resolves the operator against the column's type. Operators that
// cannot apply to the type are input errors naming the column.
func compile(name string, in arrow.DataType, r Rule, key Key) (*column, error) {
	c := &column{name: name, rule: r, in: in, key: key}
	fam := family(in)
	bad := func(what string) error {
		return fmt.Errorf("column %q (%s): %s %s", name, in, r.Op, what)
	}
	switch r.Op {
	case Keep:
		c.out = in
	case Drop:
	case Redact, Partial, Suppress:
		c.out = stringType
	case Pseudonym:
		if len(key) == 0 {
			return nil, fmt.Errorf("column %q: pseudonym needs a key", name)
		}
		c.out = stringType
	case Generalize:
		switch {
		case fam == "date" && (r.To == "" || r.To == "year"):
			c.out, c.mode = arrow.PrimitiveTypes.Int64, "year"
		case fam == "date" && r.To == "month":
			c.out, c.mode = stringType, "month"
		case fam == "number" && (r.To == "" || r.To == "band"):
			c.out, c.mode, c.band = stringType, "band", r.Width
			if c.band == 0 {
				c.band = 10
			}
		case (fam == "text" || fam == "number") && r.To == "prefix":
			c.out, c.mode, c.prefixLen = stringType, "prefix", r.Length
		case fam == "text" && r.To == "":
			c.out, c.mode = stringType, "auto" // decided by prepare
		default:
			return nil, bad(fmt.Sprintf("to %q does not apply to this type", r.To))
		}
	case Round, TopCode, Noise:
		if fam != "number" {
			return nil, bad("needs a numeric column")
		}
		c.out = in
		if !isInt(in) && !isFloat(in) {
			return nil, bad("supports integer and floating-point columns")
		}
	default:
		return nil, bad("is not an operator")
	}
	return c, nil
}

func isInt(t arrow.DataType) bool   { return t.ID() == arrow.INT64 || t.ID() == arrow.INT32 }
func isFloat(t arrow.DataType) bool { return t.ID() == arrow.FLOAT64 || t.ID() == arrow.FLOAT32 }

// needsCounts reports whether the column needs a counting pre-pass:
// suppression, and text generalised "auto" (decide resolves it).
func (c *column) needsCounts() bool { return c.rule.Op == Suppress || c.auto() }

func (c *column) auto() bool { return c.rule.Op == Generalize && c.mode == "auto" }

// prepare resolves data-dependent parameters from the first batch, when a
// counting pass has not resolved them (decide).
func (c *column) prepare(first arrow.Array) {
	switch {
	case c.auto():
		// Region codes generalise to their city prefix; other text is kept.
		n, codes := 0, 0
		forEachString(first, func(_ int, s string) {
			n++
			if pii.IsRegionCode(s) {
				codes++
			}
		})
		if n > 0 && codes*10 >= n*6 {
			c.mode, c.prefixLen = "prefix", 4
		} else {
			c.mode = "keep"
		}
	case c.rule.Op == Noise:
		c.sensitivity = c.rule.Sensitivity
		if c.sensitivity == 0 {
			c.sensitivity = spread(first)
		}
	}
}

// describe says what the operator does, without data values.
func (c *column) describe() string {
	switch c.rule.Op {
	case Generalize:
		switch c.mode {
		case "prefix":
			return fmt.Sprintf("generalize (prefix %d)", c.prefixLen)
		case "label":
			return "generalize (dropped: it names the values of " + c.labelOf + ", which is generalised)"
		case "suppress":
			return fmt.Sprintf("generalize (categories under %d rows suppressed)", c.k())
		case "band":
			return fmt.Sprintf("generalize (band %g)", c.band)
		}
		return "generalize (" + c.mode + ")"
	case Noise:
		return fmt.Sprintf("noise (Laplace, epsilon %g, sensitivity %.3g)", c.rule.Epsilon, c.sensitivity)
	case Suppress:
		return fmt.Sprintf("suppress (k %d)", c.k())
	case Round:
		return fmt.Sprintf("round (step %g)", c.rule.Step)
	case Partial:
		return fmt.Sprintf("partial (keep first %d, last %d)", c.rule.KeepFirst, c.rule.KeepLast)
	}
	return string(c.rule.Op)
}

func (c *column) k() int {
	if c.rule.K == 0 {
		return 10
	}
	return c.rule.K
}

// newWorker returns the function a worker applies to this column's arrays.
func (c *column) newWorker(mem memory.Allocator) applyFunc {
	switch c.rule.Op {
	case Keep:
		return func(in arrow.Array) (arrow.Array, error) { in.Retain(); return in, nil }
	case Redact:
		v := c.rule.Value
		if v == "" {
			v = "***"
		}
		return c.mapStrings(mem, func(string) string { return v })
	case Partial:
		return c.mapStrings(mem, c.partial)
	case Pseudonym:
		return c.pseudonymizer(mem)
	case Suppress:
		other := c.rule.Value
		if other == "" {
			other = "OTHER"
		}
		k := int64(c.k())
		return c.mapStrings(mem, func(s string) string {
			if c.cats.size(s) < k {
				return other
			}
			return s
		})
	case Generalize:
		return c.generalizer(mem)
	case Round:
		step := c.rule.Step
		return c.mapNumbers(mem, func(x float64) float64 { return math.Round(x/step) * step })
	case TopCode:
		top, bottom := math.Inf(1), math.Inf(-1)
		if c.rule.Top != nil {
			top = *c.rule.Top
		}
		if c.rule.Bottom != nil {
			bottom = *c.rule.Bottom
		}
		return c.mapNumbers(mem, func(x float64) float64 { return math.Min(math.Max(x, bottom), top) })
	case Noise:
		lap := noise.Laplace()
		eps, sens := c.rule.Epsilon, c.sensitivity
		return c.mapNumbers(mem, func(x float64) float64 {
			y, err := lap.AddNoiseFloat64(x, 1, sens, eps, 0)
			if err != nil { // parameters were validated; keep nothing rather than the raw value
				return math.NaN()
			}
			return y
		})
	}
	return func(arrow.Array) (arrow.Array, error) {
		return nil, fmt.Errorf("column %q: internal: no worker for %s", c.name, c.rule.Op)
	}
}

func (c *column) partial(s string) string {
	n := utf8.RuneCountInString(s)
	first, last := c.rule.KeepFirst, c.rule.KeepLast
	if first+last >= n { // keeping everything would reveal the value
		first, last = 0, 0
	}
	ch := c.rule.Char
	if ch == "" {
		ch = "*"
	}
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i < first || i >= n-last {
			b.WriteRune(r)
		} else {
			b.WriteString(ch)
		}
		i++
	}
	return b.String()
}

// mapStrings applies f to the text form of every non-null value, counting
// the values it changes.
func (c *column) mapStrings(mem memory.Allocator, f func(string) string) applyFunc {
	b := array.NewStringBuilder(mem)
	return func(in arrow.Array) (arrow.Array, error) {
		b.Reserve(in.Len())
		changed := int64(0)
		forEachValue(in, b.AppendNull, func(_ int, s string) {
			o := f(s)
			if o != s {
				changed++
			}
			b.Append(o)
		})
		c.changed.Add(changed)
		return b.NewArray(), nil
	}
}

func (c *column) pseudonymizer(mem memory.Allocator) applyFunc {
	b := array.NewStringBuilder(mem)
	mac := hmac.New(sha256.New, c.key)
	prefix := c.rule.Prefix
	if prefix == "" {
		prefix = DefaultPseudonymPrefix
	}
	out := make([]byte, len(prefix)+2*pseudonymBytes)
	copy(out, prefix)
	var sum [sha256.Size]byte
	var msg []byte
	return func(in arrow.Array) (arrow.Array, error) {
		b.Reserve(in.Len())
		b.ReserveData(in.Len() * len(out))
		forEachValue(in, b.AppendNull, func(_ int, s string) {
			mac.Reset()
			msg = append(msg[:0], pii.Normalize(s)...)
			mac.Write(msg)
			h := mac.Sum(sum[:0])
			hex.Encode(out[len(prefix):], h[:pseudonymBytes])
			b.BinaryBuilder.Append(out)
		})
		c.changed.Add(int64(in.Len() - in.NullN()))
		return b.NewArray(), nil
	}
}

func (c *column) generalizer(mem memory.Allocator) applyFunc {
	f := c.generalizeMode(mem)
	if c.mode != "year" && c.mode != "month" { // the others count what they change (mapStrings)
		return f
	}
	return func(in arrow.Array) (arrow.Array, error) {
		c.changed.Add(int64(in.Len() - in.NullN()))
		return f(in)
	}
}

func (c *column) generalizeMode(mem memory.Allocator) applyFunc {
	switch c.mode {
	case "suppress":
		k := int64(c.k())
		return c.mapStrings(mem, func(s string) string {
			if c.cats.size(s) < k {
				return "OTHER"
			}
			return s
		})
	case "keep":
		return func(in arrow.Array) (arrow.Array, error) { in.Retain(); return in, nil }
	case "year":
		b := array.NewInt64Builder(mem)
		return func(in arrow.Array) (arrow.Array, error) {
			b.Reserve(in.Len())
			for i := 0; i < in.Len(); i++ {
				if t, ok := timeAt(in, i); ok {
					b.Append(int64(t.Year()))
				} else {
					b.AppendNull()
				}
			}
			return b.NewArray(), nil
		}
	case "month":
		b := array.NewStringBuilder(mem)
		return func(in arrow.Array) (arrow.Array, error) {
			for i := 0; i < in.Len(); i++ {
				if t, ok := timeAt(in, i); ok {
					b.Append(t.Format("2006-01"))
				} else {
					b.AppendNull()
				}
			}
			return b.NewArray(), nil
		}
	case "prefix":
		n := c.prefixLen
		return c.mapStrings(mem, func(s string) string {
			i := 0
			for j := range s {
				if i == n {
					return s[:j]
				}
				i++
			}
			return s
		})
	case "band":
		w := c.band
		intLabels := isInt(c.in) && w == math.Trunc(w)
		return c.mapStrings(mem, func(s string) string {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return ""
			}
			lo := math.Floor(x/w) * w
			if intLabels {
				return fmt.Sprintf("%d-%d", int64(lo), int64(lo+w-1))
			}
			return fmt.Sprintf("[%g,%g)", lo, lo+w)
		})
	}
	return func(arrow.Array) (arrow.Array, error) {
		return nil, fmt.Errorf("column %q: internal: generalize mode %q", c.name, c.mode)
	}
}

// mapNumbers applies f to every non-null number, keeping the column's type
// (integers are rounded back).
func (c *column) mapNumbers(mem memory.Allocator, f func(float64) float64) applyFunc {
	apply := c.mapNumbersOf(mem, f)
	return func(in arrow.Array) (arrow.Array, error) {
		out, err := apply(in)
		if err == nil {
			c.changed.Add(int64(countChanged(in, out)))
		}
		return out, err
	}
}

// countChanged counts the non-null positions whose value differs.
func countChanged(in, out arrow.Array) int {
	n := 0
	for i := 0; i < in.Len(); i++ {
		if in.IsNull(i) {
			continue
		}
		var same bool
		switch a := in.(type) {
		case *array.Int64:
			same = a.Value(i) == out.(*array.Int64).Value(i)
		case *array.Float64:
			same = a.Value(i) == out.(*array.Float64).Value(i)
		default:
			same = in.ValueStr(i) == out.ValueStr(i)
		}
		if !same {
			n++
		}
	}
	return n
}

func (c *column) mapNumbersOf(mem memory.Allocator, f func(float64) float64) applyFunc {
	switch c.in.ID() {
	case arrow.INT64:
		b := array.NewInt64Builder(mem)
		return func(in arrow.Array) (arrow.Array, error) {
			a := in.(*array.Int64)
			b.Reserve(a.Len())
			for i := 0; i < a.Len(); i++ {
				if a.IsNull(i) {
					b.AppendNull()
					continue
				}
				b.Append(int64(math.Round(f(float64(a.Value(i))))))
			}
			return b.NewArray(), nil
		}
	case arrow.INT32:
		b := array.NewInt32Builder(mem)
		return func(in arrow.Array) (arrow.Array, error) {
			a := in.(*array.Int32)
			for i := 0; i < a.Len(); i++ {
				if a.IsNull(i) {
					b.AppendNull()
					continue
				}
				b.Append(int32(math.Round(f(float64(a.Value(i))))))
			}
			return b.NewArray(), nil
		}
	case arrow.FLOAT32:
		b := array.NewFloat32Builder(mem)
		return func(in arrow.Array) (arrow.Array, error) {
			a := in.(*array.Float32)
			for i := 0; i < a.Len(); i++ {
				if a.IsNull(i) {
					b.AppendNull()
					continue
				}
				b.Append(float32(f(float64(a.Value(i)))))
			}
			return b.NewArray(), nil
		}
	}
	b := array.NewFloat64Builder(mem)
	return func(in arrow.Array) (arrow.Array, error) {
		a := in.(*array.Float64)
		b.Reserve(a.Len())
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				b.AppendNull()
				continue
			}
			b.Append(f(a.Value(i)))
		}
		return b.NewArray(), nil
	}
}

// forEachValue calls null for null entries and f with the text form of the
// others.
func forEachValue(in arrow.Array, null func(), f func(i int, s string)) {
	switch a := in.(type) {
	case *array.String:
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				null()
			} else {
				f(i, a.Value(i))
			}
		}
	case *array.Int64:
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				null()
			} else {
				f(i, strconv.FormatInt(a.Value(i), 10))
			}
		}
	default:
		for i := 0; i < in.Len(); i++ {
			if in.IsNull(i) {
				null()
			} else {
				f(i, in.ValueStr(i))
			}
		}
	}
}

func forEachString(in arrow.Array, f func(i int, s string)) {
	forEachValue(in, func() {}, f)
}

var epoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

func timeAt(in arrow.Array, i int) (time.Time, bool) {
	if in.IsNull(i) {
		return time.Time{}, false
	}
	switch a := in.(type) {
	case *array.Date32:
		return epoch.AddDate(0, 0, int(a.Value(i))), true
	case *array.Date64:
		return a.Value(i).ToTime(), true
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit), true
	}
	return time.Time{}, false
}

// spread estimates a column's scale from a batch: its interquartile range,
// or its range when the IQR is zero, or 1. It sets the default noise
// sensitivity for dev extracts; it is not a differential-privacy bound.
func spread(in arrow.Array) float64 {
	var xs []float64
	for i := 0; i < in.Len(); i++ {
		if in.IsNull(i) {
			continue
		}
		switch a := in.(type) {
		case *array.Int64:
			xs = append(xs, float64(a.Value(i)))
		case *array.Int32:
			xs = append(xs, float64(a.Value(i)))
		case *array.Float64:
			xs = append(xs, a.Value(i))
		case *array.Float32:
			xs = append(xs, float64(a.Value(i)))
		}
	}
	if len(xs) == 0 {
		return 1
	}
	slices.Sort(xs)
	q := func(p float64) float64 { return xs[int(p*float64(len(xs)-1))] }
	if s := q(0.75) - q(0.25); s > 0 {
		return s
	}
	if s := xs[len(xs)-1] - xs[0]; s > 0 {
		return s
	}
	return 1
}
