package mask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/compute"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicehq/sluice/dataset"
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
	out    *arrow.Schema
	counts bool
}

func newPlan(src string, schema *arrow.Schema, opts Options) (*plan, error) {
	if err := opts.Classes.Check(src, schema); err != nil {
		return nil, err
	}
	p := &plan{}
	var fields []arrow.Field
	ops := map[string]string{}
	for _, f := range schema.Fields() {
		cc := opts.Classes.Get(f.Name)
		c, err := compile(f.Name, f.Type, opts.Profile.RuleFor(f.Name, cc, f.Type), opts.Key)
		if err != nil {
			return nil, &dataset.InputError{File: src, Column: f.Name, Offset: -1, Msg: "profile " + opts.Profile.Name + ": " + err.Error()}
		}
		p.cols = append(p.cols, c)
		p.counts = p.counts || c.needsCounts()
		if !c.dropped() {
			fields = append(fields, arrow.Field{Name: f.Name, Type: c.out, Nullable: true})
		}
		ops[f.Name] = string(c.rule.Op)
	}
	if len(fields) == 0 {
		return nil, &dataset.InputError{File: src, Offset: -1, Msg: "profile " + opts.Profile.Name + " drops every column"}
	}
	meta, _ := json.Marshal(ops)
	md := arrow.NewMetadata([]string{MetadataKey}, []string{string(meta)})
	p.out = arrow.NewSchema(fields, &md)
	return p, nil
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
			counts, err := countCategories(ctx, src, opts)
			if err != nil {
				return err
			}
			for i, c := range p.cols {
				if i < len(counts) {
					c.counts = counts[i]
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

// countCategories runs the pre-pass that suppression needs: the size of
// every category of the columns it applies to (nil for the others).
func countCategories(ctx context.Context, src string, opts Options) ([]map[string]int64, error) {
	var counts []map[string]int64
	err := dataset.Stream(ctx, src, opts.Read, func(r dataset.Reader, _ dataset.Format) error {
		p, err := newPlan(src, r.Schema(), opts)
		if err != nil || !p.counts {
			return err
		}
		counts = make([]map[string]int64, len(p.cols))
		for i, c := range p.cols {
			if c.needsCounts() {
				counts[i] = map[string]int64{}
			}
		}
		for r.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			for i, col := range r.Record().Columns() {
				if m := counts[i]; m != nil {
					forEachString(col, func(_ int, s string) { m[s]++ })
				}
			}
		}
		return r.Err()
	})
	return counts, err
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
