package egress

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"hash/maphash"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/pii"
)

// maxDistinct bounds the values a column form keeps bitmaps for; beyond it
// the form is dropped (it cannot be an aggregate key anyway).
const maxDistinct = 200000

// Index is what the gate knows about a raw source. It is built once per
// dataset version and reused for every check. Values are held as keyed
// hashes (a random per-index key): the index is not a copy of the data. The
// numeric columns it keeps to recompute statistics live in memory only.
type Index struct {
	seed    maphash.Seed
	source  string
	read    dataset.Options // how the source is opened
	rows    int
	classes *dataset.Classes
	ids     map[uint64]uint8 // identifier value → source column
	cols    []*srcCol

	// The digests of the identifiers are computed on first need (a product
	// with a digest-shaped token), by reading the source's identifier
	// columns again: most products never need them.
	digestOnce sync.Once
	digests    map[uint64]digestRef
	digestErr  error
}

type digestRef struct {
	col  uint8
	algo uint8 // index into digestAlgos
}

var digestAlgos = []string{"md5", "sha1", "sha256"}

type srcCol struct {
	name    string
	class   dataset.Class
	kind    pii.Kind
	numeric bool
	forms   []*form
	nums    []float64 // numeric columns; NaN for nulls
	isID    bool
	// hashes caches, per distinct value, the keyed hash of every form (0:
	// the form does not apply); it stops growing at maxCached values.
	hashes map[string][]uint64

	ranksOnce sync.Once
	rankCache []float64
}

// ranks are the column's ranks (for rank correlation), computed once.
func (c *srcCol) ranks() []float64 {
	c.ranksOnce.Do(func() { c.rankCache = ranks(c.nums) })
	return c.rankCache
}

const maxCached = 50000

// form is a column or a derived view of it (year of a date, prefix of a
// code, band of a number) with the rows of each value.
type form struct {
	col     *srcCol
	name    string // "value", "year", "month", "prefix2", "prefix4", "band10", …
	values  map[uint64]*roaring.Bitmap
	dropped bool

	// rowValues, computed on first use as a key and kept: every row's value.
	rowsOnce sync.Once
	rowIDs   []uint32
	rowMap   map[uint64]uint32
}

func (f *form) label() string {
	if f.name == "value" {
		return f.col.name
	}
	return f.col.name + " (" + f.name + ")"
}

// Rows is the number of source rows.
func (ix *Index) Rows() int { return ix.rows }

func (ix *Index) hash(s string) uint64 { return maphash.String(ix.seed, s) }

// canon is the form values are compared in: trimmed and full-width folded;
// decimal numbers in one notation ("6000.0" and "6000" agree); everything
// else normalised as identifiers are (upper case, no spaces or separators),
// so "138 1234 5678" meets "13812345678". Digit strings keep every digit.
func canon(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if isDecimal(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) {
			if f == math.Trunc(f) && math.Abs(f) < 1e15 {
				return strconv.FormatInt(int64(f), 10)
			}
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	return pii.Normalize(s)
}

// isDecimal matches [+-]digits.digits[e[+-]digits] with a fraction or an
// exponent; plain digit strings (codes, identifiers) are left as they are.
func isDecimal(s string) bool {
	i := 0
	if s[0] == '+' || s[0] == '-' {
		i++
	}
	digits, frac := 0, false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		frac = true
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') && digits > 0 {
		frac = true
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		e := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		}
		if i == e {
			return false
		}
	}
	return i == len(s) && digits > 0 && digits <= 15 && frac
}

// BuildIndex reads the source once (as read says: read.Open opens a sealed
// source, decrypted as it is read) and indexes it. Without a classification
// the source is classified with the dataset detectors. The index reads the
// source again, the same way, if a product holds digest-shaped tokens.
func BuildIndex(ctx context.Context, source string, classes *dataset.Classes, read dataset.Options) (*Index, error) {
	if classes == nil {
		prof, err := dataset.Inspect(ctx, source, read)
		if err != nil {
			return nil, err
		}
		classes = dataset.Classify(prof).Classes
	}
	ix := &Index{seed: maphash.MakeSeed(), source: source, read: read, classes: classes, ids: map[uint64]uint8{}}
	err := dataset.Stream(ctx, source, read, func(r dataset.Reader, _ dataset.Format) error {
		if err := classes.Check(source, r.Schema()); err != nil {
			return err
		}
		ix.rows = 0
		ix.cols = nil
		ix.ids = map[uint64]uint8{}
		if r.Schema().NumFields() > 255 {
			return &dataset.InputError{File: source, Offset: -1, Msg: "more than 255 columns", Err: dataset.ErrInvalidInput}
		}
		for _, f := range r.Schema().Fields() {
			cc := classes.Get(f.Name)
			c := &srcCol{name: f.Name, class: cc.Class, kind: cc.PII, isID: cc.Class == dataset.Identifier}
			switch f.Type.ID() {
			case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.FLOAT32, arrow.FLOAT64:
				c.numeric = true
			}
			if !c.isID {
				c.forms = append(c.forms, &form{col: c, name: "value", values: map[uint64]*roaring.Bitmap{}})
				for _, d := range derivedForms(f.Type) {
					c.forms = append(c.forms, &form{col: c, name: d, values: map[uint64]*roaring.Bitmap{}})
				}
			}
			ix.cols = append(ix.cols, c)
		}
		for r.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec := r.Record()
			base := ix.rows
			var wg sync.WaitGroup
			sem := make(chan struct{}, runtime.GOMAXPROCS(0))
			var mu sync.Mutex
			for i, col := range rec.Columns() {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					ix.addColumn(i, ix.cols[i], col, base, &mu)
				}()
			}
			wg.Wait()
			ix.rows += int(rec.NumRows())
		}
		return r.Err()
	})
	if err != nil {
		return nil, err
	}
	for _, c := range ix.cols {
		for _, f := range c.forms {
			for _, b := range f.values {
				b.RunOptimize()
			}
		}
	}
	return ix, nil
}

// derivedForms are the coarser views a product key may use.
func derivedForms(t arrow.DataType) []string {
	switch t.ID() {
	case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
		return []string{"year", "month"}
	case arrow.STRING, arrow.LARGE_STRING:
		return []string{"prefix2", "prefix4", "year", "month"}
	case arrow.INT64, arrow.INT32:
		return []string{"band10"}
	}
	return nil
}

// derive computes a derived form of a value ("" when it does not apply).
func derive(form, v string) string {
	switch form {
	case "year", "month":
		if len(v) >= 7 && v[4] == '-' && isDigits(v[:4]) && isDigits(v[5:7]) {
			if form == "year" {
				return v[:4]
			}
			return v[:7]
		}
	case "prefix2", "prefix4":
		n := 2
		if form == "prefix4" {
			n = 4
		}
		if len(v) > n && isDigits(v) {
			return v[:n]
		}
	case "band10":
		if x, err := strconv.ParseInt(v, 10, 64); err == nil {
			lo := x - ((x%10)+10)%10
			return strconv.FormatInt(lo, 10) + "-" + strconv.FormatInt(lo+9, 10)
		}
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func (ix *Index) addColumn(ci int, c *srcCol, col arrow.Array, base int, mu *sync.Mutex) {
	n := col.Len()
	var ids []uint64
	defer func() {
		if len(ids) > 0 {
			mu.Lock()
			for _, h := range ids {
				ix.ids[h] = uint8(ci)
			}
			mu.Unlock()
		}
	}()
	if c.numeric {
		for i := 0; i < n; i++ {
			x := math.NaN()
			if col.IsValid(i) {
				switch a := col.(type) {
				case *array.Int64:
					x = float64(a.Value(i))
				case *array.Float64:
					x = a.Value(i)
				case *array.Int32:
					x = float64(a.Value(i))
				case *array.Float32:
					x = float64(a.Value(i))
				default:
					x, _ = strconv.ParseFloat(col.ValueStr(i), 64)
				}
			}
			c.nums = append(c.nums, x)
		}
	}
	live := false
	for _, f := range c.forms {
		live = live || !f.dropped
	}
	if !live && !c.isID {
		return // a column too varied to group by
	}
	pending := make([]map[uint64][]uint32, len(c.forms))
	for fi := range pending {
		pending[fi] = map[uint64][]uint32{}
	}
	for i := 0; i < n; i++ {
		if col.IsNull(i) {
			continue
		}
		var v string
		if s, ok := col.(*array.String); ok {
			v = s.Value(i)
		} else {
			v = col.ValueStr(i)
		}
		if c.isID {
			ids = append(ids, ix.hash(canon(v)))
			continue
		}
		row := uint32(base + i)
		hs := c.hashes[v]
		if hs == nil {
			hs = make([]uint64, len(c.forms))
			for fi, f := range c.forms {
				key := v
				if f.name != "value" {
					key = derive(f.name, v)
				}
				if key != "" {
					hs[fi] = ix.hash(canon(key))
				}
			}
			if c.hashes == nil {
				c.hashes = map[string][]uint64{}
			}
			if len(c.hashes) < maxCached {
				c.hashes[strings.Clone(v)] = hs // v points into the batch
			}
		}
		for fi, f := range c.forms {
			if hs[fi] != 0 && !f.dropped {
				pending[fi][hs[fi]] = append(pending[fi][hs[fi]], row)
			}
		}
	}
	// Rows arrive in order: adding them per value and batch is much cheaper
	// than one at a time.
	for fi, f := range c.forms {
		for h, rows := range pending[fi] {
			if f.dropped {
				break
			}
			b := f.values[h]
			if b == nil {
				if len(f.values) >= maxDistinct {
					f.dropped, f.values = true, nil
					break
				}
				b = roaring.New()
				f.values[h] = b
			}
			b.AddMany(rows)
		}
	}
}

// buildDigests reads the identifier columns of the source again and
// records the keyed hash of every unsalted MD5, SHA-1 and SHA-256 of each
// value (as written, normalised, lower-cased).
func (ix *Index) buildDigests() {
	ix.digests = map[uint64]digestRef{}
	var idCols []int
	for i, c := range ix.cols {
		if c.isID {
			idCols = append(idCols, i)
		}
	}
	if len(idCols) == 0 {
		return
	}
	var mu sync.Mutex
	read := ix.read
	read.StringColumns = ix.stringColumns()
	ix.digestErr = dataset.Stream(context.Background(), ix.source, read, func(r dataset.Reader, _ dataset.Format) error {
		for r.Next() {
			rec := r.Record()
			var wg sync.WaitGroup
			for _, ci := range idCols {
				col := rec.Column(ci)
				wg.Add(1)
				go func() {
					defer wg.Done()
					local := make(map[uint64]digestRef, col.Len()*3)
					for i := 0; i < col.Len(); i++ {
						if col.IsNull(i) {
							continue
						}
						ix.digestsOf(col.ValueStr(i), uint8(ci), local)
					}
					mu.Lock()
					for h, d := range local {
						ix.digests[h] = d
					}
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		return r.Err()
	})
}

// stringColumns names the source's text columns, so that a second read
// infers the same types.
func (ix *Index) stringColumns() map[string]bool {
	m := map[string]bool{}
	for _, c := range ix.cols {
		if !c.numeric {
			m[c.name] = true
		}
	}
	return m
}

func (ix *Index) digestsOf(v string, ci uint8, into map[uint64]digestRef) {
	forms := []string{v}
	if n := pii.Normalize(v); n != v {
		forms = append(forms, n)
	}
	if l := strings.ToLower(v); l != v {
		forms = append(forms, l)
	}
	for _, f := range forms {
		m := md5.Sum([]byte(f))
		s1 := sha1.Sum([]byte(f))
		s2 := sha256.Sum256([]byte(f))
		into[maphash.Bytes(ix.seed, m[:])] = digestRef{col: ci, algo: 0}
		into[maphash.Bytes(ix.seed, s1[:])] = digestRef{col: ci, algo: 1}
		into[maphash.Bytes(ix.seed, s2[:])] = digestRef{col: ci, algo: 2}
	}
}

// identifier reports the source column whose raw value equals s.
func (ix *Index) identifier(s string) (int, bool) {
	c := canon(s)
	if c == "" {
		return 0, false
	}
	ci, ok := ix.ids[ix.hash(c)]
	return int(ci), ok
}

// digest reports the identifier column whose value has this digest.
func (ix *Index) digest(b []byte) (digestRef, bool) {
	ix.digestOnce.Do(ix.buildDigests)
	d, ok := ix.digests[maphash.Bytes(ix.seed, b)]
	return d, ok
}
