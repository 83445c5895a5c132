package mask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/pii"
)

// MetadataKey is the output schema metadata key holding the operator applied
// to each column (as JSON; never values).
const MetadataKey = "sluice.masking"

// Options configure a masking run.
type Options struct {
	Profile *Profile         // required
	Classes *dataset.Classes // required; unlisted columns are Other
	Key     Key              // required when any column is pseudonymised
	Sample  float64          // row fraction kept; overrides the profile when > 0
	Seed    uint64           // sampling seed
	Workers int              // parallel maskers; GOMAXPROCS when 0
	Read    dataset.Options
}

// Report says what a masking run did. It holds no data values.
type Report struct {
	Source  string         `json:"source"`
	Output  string         `json:"output"`
	Profile string         `json:"profile"`
	Sample  float64        `json:"sample,omitempty"`
	RowsIn  int64          `json:"rows_in"`
	RowsOut int64          `json:"rows_out"`
	Columns []ColumnReport `json:"columns"`
}

// ColumnReport is what happened to one column.
type ColumnReport struct {
	Name    string `json:"name"`
	Class   string `json:"class"`
	PII     string `json:"pii,omitempty"`
	Op      string `json:"op"`
	Type    string `json:"type"`
	OutType string `json:"out_type,omitempty"`
	Changed int64  `json:"changed"` // values replaced, removed or clipped
}

// plan is the compiled profile for one schema.
type plan struct {
	cols   []*column
	in     *arrow.Schema
	out    *arrow.Schema
	counts bool
}

func newPlan(src string, schema *arrow.Schema, opts Options) (*plan, error) {
	if err := opts.Classes.Check(src, schema); err != nil {
		return nil, err
	}
	p := &plan{in: schema}
	for _, f := range schema.Fields() {
		cc := opts.Classes.Get(f.Name)
		c, err := compile(f.Name, f.Type, opts.Profile.RuleFor(f.Name, cc, f.Type), opts.Key)
		if err != nil {
			return nil, &dataset.InputError{File: src, Column: f.Name, Offset: -1, Msg: "profile " + opts.Profile.Name + ": " + err.Error()}
		}
		p.cols = append(p.cols, c)
		p.counts = p.counts || c.needsCounts()
	}
	return p, p.schema(src, opts.Profile.Name)
}

// schema makes the output schema of the columns not dropped, with the
// operator of every column in its metadata.
func (p *plan) schema(src, profile string) error {
	var fields []arrow.Field
	ops := map[string]string{}
	for i, f := range p.in.Fields() {
		c := p.cols[i]
		if !c.dropped() {
			fields = append(fields, arrow.Field{Name: f.Name, Type: c.out, Nullable: true})
		}
		ops[f.Name] = string(c.rule.Op)
		if c.dropped() {
			ops[f.Name] = string(Drop)
		}
	}
	if len(fields) == 0 {
		return &dataset.InputError{File: src, Offset: -1, Msg: "profile " + profile + " drops every column"}
	}
	meta, _ := json.Marshal(ops)
	md := arrow.NewMetadata([]string{MetadataKey}, []string{string(meta)})
	p.out = arrow.NewSchema(fields, &md)
	return nil
}

// decide resolves the text columns generalised "auto" from the counting
// pass, consistently with each other: a column of region codes generalises
// to the city prefix; a column whose every value goes with one value of a
// region-code column (district names beside district codes) names those
// regions, would give back what their generalisation hides, and is
// dropped; any other text keeps its categories of at least k rows and
// suppresses the rest.
func (p *plan) decide(t *tally) {
	codes := map[int]bool{}
	for i, c := range p.cols {
		if c.auto() && t.rows[i] > 0 && t.codes[i]*10 >= t.rows[i]*6 {
			c.mode, c.prefixLen, codes[i] = "prefix", 4, true
		}
	}
	for i, c := range p.cols {
		if !c.auto() {
			continue
		}
		c.mode = "suppress"
		for j := range codes {
			if f := t.follows[[2]int{i, j}]; f != nil && f.determines(t.cats[i].sizes, t.rows[i]) {
				c.mode, c.labelOf, c.out = "label", p.cols[j].name, nil
				break
			}
		}
	}
}

// File masks the dataset at src into dst (format from dst's extension).
// Nothing is left at dst unless the whole run succeeds.
func File(ctx context.Context, src, dst string, opts Options) (*Report, error) {
	if opts.Profile == nil || opts.Classes == nil {
		return nil, errors.New("mask: profile and classes are required")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	sample := opts.Profile.Sample
	if opts.Sample > 0 {
		sample = opts.Sample
	}
	if sample < 0 || sample > 1 {
		return nil, fmt.Errorf("sample %v is outside (0, 1]: %w", sample, dataset.ErrInvalidInput)
	}
	if sample == 1 {
		sample = 0
	}
	var rep *Report
	err := dataset.Stream(ctx, src, opts.Read, func(r dataset.Reader, _ dataset.Format) error {
		p, err := newPlan(src, r.Schema(), opts)
		if err != nil {
			return err
		}
		if p.counts { // suppression needs every category's size first
			t, err := countCategories(ctx, src, opts)
			if err != nil {
				return err
			}
			if t != nil {
				for i, c := range p.cols {
					c.cats = t.cats[i]
				}
				p.decide(t)
				if err := p.schema(src, opts.Profile.Name); err != nil {
					return err
				}
			}
		}
		w, err := dataset.Create(dst, p.out)
		if err != nil {
			return err
		}
		defer w.Abort()
		rep = &Report{Source: src, Output: dst, Profile: opts.Profile.Name, Sample: sample}
		if err := run(ctx, r, p, w, opts, sample, rep); err != nil {
			return err
		}
		for i, f := range r.Schema().Fields() {
			c := p.cols[i]
			cc := opts.Classes.Get(f.Name)
			cr := ColumnReport{Name: f.Name, Class: string(cc.Class), PII: string(cc.PII), Op: c.describe(), Type: f.Type.String(), Changed: c.changed.Load()}
			if c.out != nil {
				cr.OutType = c.out.String()
			}
			rep.Columns = append(rep.Columns, cr)
		}
		return w.Commit()
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// tally is what the counting pass learns of the columns that need it.
type tally struct {
	cats    []*categories // category sizes (nil: not counted)
	rows    []int64       // non-null values
	codes   []int64       // values that are region codes
	follows map[[2]int]*follows
}

// follows tracks whether the values of one column (by category ID) each go
// with a single value of another.
type follows struct {
	first []int32 // the other's category first seen with each; -1 none yet
	mixed []bool  // seen with more than one
}

func (f *follows) add(a, b int32) {
	for int(a) >= len(f.first) {
		f.first, f.mixed = append(f.first, -1), append(f.mixed, false)
	}
	switch f.first[a] {
	case -1:
		f.first[a] = b
	case b:
	default:
		f.mixed[a] = true
	}
}

// determines: at least 98% of the rows (sizes by category ID) have a value
// that goes with one value of the other column, and there are at least
// two values.
func (f *follows) determines(sizes []int64, rows int64) bool {
	if len(f.first) < 2 || rows == 0 {
		return false
	}
	var mixed int64
	for a, m := range f.mixed {
		if m {
			mixed += sizes[a]
		}
	}
	return mixed*50 <= rows
}

// categories numbers a column's distinct values and counts them.
type categories struct {
	ids   map[string]int32
	sizes []int64 // by ID
}

func newCategories() *categories { return &categories{ids: map[string]int32{}} }

// size is the number of rows with value s (0 for a value never counted, or
// no counts at all).
func (c *categories) size(s string) int64 {
	if c == nil {
		return 0
	}
	if id, ok := c.ids[s]; ok {
		return c.sizes[id]
	}
	return 0
}

func (c *categories) id(s string) int32 {
	if id, ok := c.ids[s]; ok {
		c.sizes[id]++
		return id
	}
	id := int32(len(c.sizes))
	c.ids[strings.Clone(s)] = id // s points into the batch; the key outlives it
	c.sizes = append(c.sizes, 1)
	return id
}

// countCategories runs the pre-pass that suppression and auto
// generalisation need: the size of every category of the columns they
// apply to and, for auto text columns, whether each one's values go with
// single values of a column that looks like region codes (from the first
// batch). It returns nil when no column needs it.
func countCategories(ctx context.Context, src string, opts Options) (*tally, error) {
	var t *tally
	err := dataset.Stream(ctx, src, opts.Read, func(r dataset.Reader, _ dataset.Format) error {
		p, err := newPlan(src, r.Schema(), opts)
		if err != nil || !p.counts {
			return err
		}
		n := len(p.cols)
		cats := make([]*categories, n)
		for i, c := range p.cols {
			if c.needsCounts() {
				cats[i] = newCategories()
			}
		}
		t = &tally{cats: cats, rows: make([]int64, n), codes: make([]int64, n), follows: map[[2]int]*follows{}}
		ids := make([][]int32, n) // this batch's category IDs, -1 for null
		first := true
		for r.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec := r.Record()
			if first { // which auto columns could be region codes, and so which pairs to follow
				first = false
				for j, c := range p.cols {
					if c.auto() && looksLikeCodes(rec.Column(j)) {
						for i, o := range p.cols {
							if i != j && o.auto() {
								t.follows[[2]int{i, j}] = &follows{}
							}
						}
					}
				}
			}
			for i, col := range rec.Columns() {
				c := cats[i]
				if c == nil {
					continue
				}
				isAuto := p.cols[i].auto()
				ids[i] = ids[i][:0]
				forEachValue(col, func() { ids[i] = append(ids[i], -1) }, func(_ int, s string) {
					ids[i] = append(ids[i], c.id(s))
					t.rows[i]++
					if isAuto && pii.IsRegionCode(s) {
						t.codes[i]++
					}
				})
			}
			for pair, f := range t.follows {
				a, b := ids[pair[0]], ids[pair[1]]
				for row, id := range a {
					if id >= 0 {
						f.add(id, b[row])
					}
				}
			}
		}
		return r.Err()
	})
	return t, err
}

// looksLikeCodes: at least 60% of a batch's values are region codes.
func looksLikeCodes(col arrow.Array) bool {
	n, codes := 0, 0
	forEachString(col, func(_ int, s string) {
		n++
		if pii.IsRegionCode(s) {
			codes++
		}
	})
	return n > 0 && codes*10 >= n*6
}

type job struct {
	seq int
	rec arrow.Record
}

type result struct {
	seq int
	rec arrow.Record
	err error
}

// run streams batches from r through the workers into w, in order.
func run(ctx context.Context, r dataset.Reader, p *plan, w *dataset.Writer, opts Options, sample float64, rep *Report) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job, opts.Workers)
	results := make(chan result, opts.Workers)
	var readErr error
	var wg sync.WaitGroup

	// Reader: sequential, so sampling and prepare are deterministic.
	go func() {
		defer close(jobs)
		rng := rand.New(rand.NewPCG(opts.Seed, 0x5a3b1e))
		seq := 0
		for r.Next() {
			rec := r.Record()
			rep.RowsIn += rec.NumRows()
			if seq == 0 {
				for i, c := range p.cols {
					c.prepare(rec.Column(i))
				}
			}
			rec.Retain()
			if sample > 0 {
				s, err := sampleRows(ctx, rec, rng, sample)
				rec.Release()
				if err != nil {
					readErr = err
					return
				}
				rec = s
			}
			select {
			case jobs <- job{seq, rec}:
				seq++
			case <-ctx.Done():
				rec.Release()
				return
			}
		}
		readErr = r.Err()
	}()

	for i := 0; i < opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fns []applyFunc
			for j := range jobs {
				if fns == nil { // after prepare, which precedes the first job
					fns = make([]applyFunc, len(p.cols))
					for i, c := range p.cols {
						if !c.dropped() {
							fns[i] = c.newWorker(memory.DefaultAllocator)
						}
					}
				}
				out, err := maskRecord(p, fns, j.rec)
				j.rec.Release()
				select {
				case results <- result{j.seq, out, err}:
				case <-ctx.Done():
					if out != nil {
						out.Release()
					}
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	pending := map[int]arrow.Record{}
	defer func() {
		for _, rec := range pending {
			rec.Release()
		}
	}()
	next := 0
	var firstErr error
	for res := range results {
		if firstErr != nil {
			if res.rec != nil {
				res.rec.Release()
			}
			continue
		}
		if res.err != nil {
			firstErr = res.err
			cancel()
			continue
		}
		pending[res.seq] = res.rec
		for {
			rec, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			rep.RowsOut += rec.NumRows()
			err := w.Write(rec)
			rec.Release()
			next++
			if err != nil {
				firstErr = err
				cancel()
				break
			}
		}
	}
	if firstErr != nil {
		return firstErr
	}
	if readErr != nil {
		return readErr
	}
	return ctx.Err()
}

func maskRecord(p *plan, fns []applyFunc, rec arrow.Record) (arrow.Record, error) {
	cols := make([]arrow.Array, 0, len(p.out.Fields()))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i, fn := range fns {
		if fn == nil {
			continue
		}
		a, err := fn(rec.Column(i))
		if err != nil {
			return nil, err
		}
		cols = append(cols, a)
	}
	return array.NewRecord(p.out, cols, rec.NumRows()), nil
}

// sampleRows keeps each row with probability fraction.
func sampleRows(ctx context.Context, rec arrow.Record, rng *rand.Rand, fraction float64) (arrow.Record, error) {
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	defer ib.Release()
	for i := int64(0); i < rec.NumRows(); i++ {
		if rng.Float64() < fraction {
			ib.Append(i)
		}
	}
	idx := ib.NewInt64Array()
	defer idx.Release()
	cols := make([]arrow.Array, rec.NumCols())
	for i, c := range rec.Columns() {
		a, err := compute.TakeArray(ctx, c, idx)
		if err != nil {
			for _, done := range cols[:i] {
				done.Release()
			}
			return nil, fmt.Errorf("sample: %w", err)
		}
		cols[i] = a
	}
	out := array.NewRecord(rec.Schema(), cols, int64(idx.Len()))
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}
