package dataset

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/axiomhq/hyperloglog"

	"github.com/sluicehq/sluice/dataset/pii"
)

// Profile summarises a dataset without holding any of its values.
type Profile struct {
	File    string          `json:"file"`
	Format  Format          `json:"format"`
	Rows    int64           `json:"rows"`
	Columns []ColumnProfile `json:"columns"`
}

// ColumnProfile summarises one column.
type ColumnProfile struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nulls    int64  `json:"nulls"`
	Distinct uint64 `json:"distinct"` // approximate (HyperLogLog, ~1% error)
	// PII lists the identifier kinds found, most frequent first.
	PII []PIIMatch `json:"pii,omitempty"`
	// RegionCodes counts values that are plausible 6-digit region codes.
	RegionCodes int64 `json:"region_codes,omitempty"`
	// OrgNames counts values that look like organisation names.
	OrgNames int64 `json:"org_names,omitempty"`

	kind arrow.Type
}

// PIIMatch is how many non-null values of a column are valid identifiers of
// one kind.
type PIIMatch struct {
	Kind    pii.Kind `json:"kind"`
	Matches int64    `json:"matches"`
	Rate    float64  `json:"rate"` // matches / non-null values
}

// NonNull is the number of non-null values.
func (c *ColumnProfile) NonNull(rows int64) int64 { return rows - c.Nulls }

// TopPII returns the most frequent identifier kind, if any.
func (c *ColumnProfile) TopPII() (PIIMatch, bool) {
	if len(c.PII) == 0 {
		return PIIMatch{}, false
	}
	return c.PII[0], true
}

type columnStats struct {
	nulls   int64
	hll     *hyperloglog.Sketch
	pii     map[pii.Kind]int64
	regions int64
	orgs    int64
	// seen caches what detection found for repeated values (categories);
	// it stops growing at maxSeen entries.
	seen map[string]valueFacts
}

// valueFacts is what detection found in one value.
type valueFacts struct {
	kind        pii.Kind
	region, org bool
}

const maxSeen = 4096

// Inspect reads the whole dataset once, in batches, and profiles every
// column: nulls, approximate distinct values, and identifier kinds detected
// by structure (see package pii).
func Inspect(ctx context.Context, path string, opts Options) (*Profile, error) {
	var prof *Profile
	err := Stream(ctx, path, opts, func(r Reader, format Format) error {
		schema := r.Schema()
		stats := make([]columnStats, schema.NumFields())
		for i := range stats {
			stats[i] = columnStats{hll: hyperloglog.New14(), pii: map[pii.Kind]int64{}, seen: map[string]valueFacts{}}
		}
		seed := maphash.MakeSeed()
		var rows int64
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		for r.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec := r.Record()
			rows += rec.NumRows()
			// Columns are independent: profile them in parallel.
			var wg sync.WaitGroup
			for i, col := range rec.Columns() {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					stats[i].observe(seed, col)
				}()
			}
			wg.Wait()
			if opts.Progress != nil {
				opts.Progress(rows)
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
		prof = &Profile{File: path, Format: format, Rows: rows}
		for i, f := range schema.Fields() {
			s := stats[i]
			cp := ColumnProfile{Name: f.Name, Type: f.Type.String(), Nulls: s.nulls, Distinct: s.hll.Estimate(), RegionCodes: s.regions, OrgNames: s.orgs, kind: f.Type.ID()}
			nonNull := rows - s.nulls
			if cp.Distinct > uint64(nonNull) {
				cp.Distinct = uint64(nonNull)
			}
			for k, n := range s.pii {
				cp.PII = append(cp.PII, PIIMatch{Kind: k, Matches: n, Rate: float64(n) / float64(nonNull)})
			}
			sort.Slice(cp.PII, func(a, b int) bool {
				if cp.PII[a].Matches != cp.PII[b].Matches {
					return cp.PII[a].Matches > cp.PII[b].Matches
				}
				return cp.PII[a].Kind < cp.PII[b].Kind
			})
			prof.Columns = append(prof.Columns, cp)
		}
		return nil
	})
	return prof, err
}

// stringArray is what *array.String and *array.LargeString have in common.
type stringArray interface {
	arrow.Array
	Value(int) string
}

func (s *columnStats) observe(seed maphash.Seed, col arrow.Array) {
	s.nulls += int64(col.NullN())
	var buf [8]byte
	hashInt := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		s.hll.InsertHash(maphash.Bytes(seed, buf[:]))
	}
	switch a := col.(type) {
	case stringArray:
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				continue
			}
			v := a.Value(i)
			s.hll.InsertHash(maphash.String(seed, v))
			s.detect(v)
		}
	case *array.Int64:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				hashInt(uint64(a.Value(i)))
				s.detect(strconv.FormatInt(a.Value(i), 10))
			}
		}
	case *array.Float64:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				hashInt(math.Float64bits(a.Value(i)))
			}
		}
	default:
		for i := 0; i < col.Len(); i++ {
			if col.IsValid(i) {
				s.hll.InsertHash(maphash.String(seed, col.ValueStr(i)))
			}
		}
	}
}

func (s *columnStats) detect(v string) {
	f, ok := s.seen[v]
	if !ok {
		f = valueFacts{kind: pii.Detect(v), region: pii.IsRegionCode(v), org: pii.IsOrgName(v)}
		if len(s.seen) < maxSeen {
			s.seen[strings.Clone(v)] = f // v points into a batch buffer
		}
	}
	if f.kind != "" {
		s.pii[f.kind]++
	}
	if f.region {
		s.regions++
	}
	if f.org {
		s.orgs++
	}
}
