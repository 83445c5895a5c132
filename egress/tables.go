package egress

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/dataset"
)

// Thresholds are the effective thresholds of a check (from the policy).
type Thresholds struct {
	MinGroupSize    int
	MinCellCount    int
	K               int
	L               int
	NkN             int
	NkK             float64
	PPercent        float64
	DiffMin         int
	ZerosDisclosive bool
	MaxFileBytes    int64
	MaxRows         int64
}

// ThresholdsFrom reads the policy's threshold document.
func ThresholdsFrom(m map[string]any) Thresholds {
	num := func(k string, def float64) float64 {
		switch v := m[k].(type) {
		case float64:
			return v
		case int:
			return float64(v)
		case int64:
			return float64(v)
		case interface{ String() string }:
			if f, err := strconv.ParseFloat(v.String(), 64); err == nil {
				return f
			}
		}
		return def
	}
	zeros, _ := m["zeros_disclosive"].(bool)
	return Thresholds{
		MinGroupSize: int(num("min_group_size", 10)), MinCellCount: int(num("min_cell_count", 10)),
		K: int(num("k_anonymity", 10)), L: int(num("l_diversity", 2)),
		NkN: int(num("nk_n", 2)), NkK: num("nk_k", 0.9), PPercent: num("p_percent", 0.1),
		DiffMin: int(num("differencing_min", 10)), ZerosDisclosive: zeros,
		MaxFileBytes: int64(num("max_file_bytes", 16<<20)), MaxRows: int64(num("max_rows", 1e6)),
	}
}

var (
	countWords   = []string{"n", "count", "cnt", "num", "freq", "frequency", "size", "people", "persons", "residents", "人数", "数量", "计数", "户数", "频数"}
	measureWords = []string{"n", "count", "cnt", "num", "freq", "total", "sum", "mean", "avg", "average", "median", "max", "min", "std", "sd", "var", "rate", "ratio", "share", "pct", "percent", "prop", "score", "coef", "estimate", "value", "amount",
		"lowest", "highest", "largest", "smallest", "top", "bottom", "peak", "least", "most", "first", "last", "quantile", "percentile", "p50", "p90", "p95", "p99", "合计", "总", "平均", "均值", "最大", "最小", "中位", "比例", "占比", "金额", "得分"}
)

// keyCol is a product column grounded in a source form.
type keyCol struct {
	col     *Column
	form    *form
	overlap float64
}

// groupStat is a source group recomputed from the source rows.
type groupStat struct {
	count         int
	sum, min, max []float64 // per numeric source column
	top1, top2    []float64
	distinctSens  map[uint32]struct{}
}

type comboKey [6]uint32

// tableAnalysis runs the group, cell, extreme, dominance, row-level and
// affine detectors over one table.
type tableAnalysis struct {
	ix   *Index
	th   Thresholds
	t    *Table
	name string
	out  []Finding
}

func (a *tableAnalysis) add(f Finding) {
	f.Table = a.name
	a.out = append(a.out, f)
}

func analyzeTable(ix *Index, th Thresholds, t *Table) []Finding {
	a := &tableAnalysis{ix: ix, th: th, t: t, name: t.Name}
	if t.Rows == 0 {
		return nil
	}
	var keys []keyCol
	var measures []*Column
	for _, c := range t.Columns {
		tokens := dataset.NameTokens(c.Name)
		if dataset.HasKeyword(c.Name, tokens, measureWords) && numericColumn(c) {
			measures = append(measures, c)
			continue
		}
		// A number that takes a sensitive column's values is a statistic
		// of it (or the values themselves), not a grouping key.
		if k, ok := a.ground(c); ok && !(k.form.col.class == dataset.Sensitive && k.form.col.numeric && numericColumn(c)) {
			keys = append(keys, k)
		} else if numericColumn(c) {
			measures = append(measures, c)
		}
	}
	if len(keys) > len(comboKey{}) {
		sort.Slice(keys, func(i, j int) bool { return keys[i].overlap > keys[j].overlap })
		keys = keys[:len(comboKey{})]
	}
	// Without grounded keys, a table about as long as the source is taken
	// for records; with keys, repeated key combinations decide.
	rowLevel := t.Rows >= 100 && ix.rows > 0 && t.Rows*2 > ix.rows
	if len(keys) > 0 {
		rowLevel = a.grouped(keys, measures)
	} else {
		for _, m := range measures {
			if isCountColumn(m, nil) {
				a.cells(m)
			}
		}
	}
	if rowLevel {
		a.add(Finding{Detector: DetRowLevel, Severity: Medium, Count: int64(t.Rows), Value: float64(t.Rows),
			Message: fmt.Sprintf("%d rows that correspond to source records, not aggregates", t.Rows)})
	}
	a.affine(measures)
	return a.out
}

// ground finds the source column (or derived form) whose values a product
// column takes: at least 90% of its distinct values must occur there.
func (a *tableAnalysis) ground(c *Column) (keyCol, bool) {
	c.groundOnce.Do(func() { c.grounded = a.groundColumn(c) })
	k := c.grounded
	return k, k.form != nil && k.overlap >= 0.9
}

func (a *tableAnalysis) groundColumn(c *Column) keyCol {
	distinct := map[uint64]struct{}{}
	for _, v := range c.Values {
		if cv := canon(v); cv != "" {
			distinct[a.ix.hash(cv)] = struct{}{}
			if len(distinct) > maxDistinct {
				return keyCol{}
			}
		}
	}
	if len(distinct) == 0 {
		return keyCol{}
	}
	var best keyCol
	for _, sc := range a.ix.cols {
		for _, f := range sc.forms {
			if f.dropped || len(f.values) == 0 {
				continue
			}
			hit := 0
			for h := range distinct {
				if _, ok := f.values[h]; ok {
					hit++
				}
			}
			ov := float64(hit) / float64(len(distinct))
			if ov > best.overlap || (ov == best.overlap && best.form != nil && len(f.values) < len(best.form.values)) {
				best = keyCol{col: c, form: f, overlap: ov}
			}
		}
	}
	return best
}

// rowValues maps every source row to the index of its value in a form
// (0 for none).
func (f *form) rowValues(rows int) ([]uint32, map[uint64]uint32) {
	f.rowsOnce.Do(func() { f.rowIDs, f.rowMap = f.buildRowValues(rows) })
	return f.rowIDs, f.rowMap
}

func (f *form) buildRowValues(rows int) ([]uint32, map[uint64]uint32) {
	ids := make([]uint32, rows)
	byHash := make(map[uint64]uint32, len(f.values))
	next := uint32(1)
	for h, b := range f.values {
		id := next
		next++
		byHash[h] = id
		it := b.Iterator()
		for it.HasNext() {
			ids[it.Next()] = id
		}
	}
	return ids, byHash
}

// grouped recomputes every product group from the source and applies the
// aggregate or row-level detectors. It returns whether the table is
// row-level.
func (a *tableAnalysis) grouped(keys []keyCol, measures []*Column) bool {
	ix, t := a.ix, a.t
	// Which keys are quasi-identifying (the rest hold sensitive values).
	var qi []keyCol
	for _, k := range keys {
		if k.form.col.class != dataset.Sensitive {
			qi = append(qi, k)
		}
	}
	// Product rows as combos; duplicates mean records, not groups.
	rowIDs := make([][]uint32, len(keys))
	maps := make([]map[uint64]uint32, len(keys))
	srcIDs := make([][]uint32, len(keys))
	for i, k := range keys {
		srcIDs[i], maps[i] = k.form.rowValues(ix.rows)
		rowIDs[i] = make([]uint32, t.Rows)
		for r, v := range k.col.Values {
			rowIDs[i][r] = maps[i][ix.hash(canon(v))]
		}
	}
	combo := func(ids [][]uint32, row int, use []int) (comboKey, bool) {
		var k comboKey
		for j, i := range use {
			if ids[i][row] == 0 {
				return k, false
			}
			k[j] = ids[i][row]
		}
		return k, true
	}
	all := make([]int, len(keys))
	for i := range keys {
		all[i] = i
	}
	seen := map[comboKey]int{}
	for r := 0; r < t.Rows; r++ {
		if k, ok := combo(rowIDs, r, all); ok {
			seen[k]++
		}
	}
	rowLevel := false
	for _, n := range seen {
		if n > 1 {
			rowLevel = true
			break
		}
	}
	// Row-level output is judged by its quasi-identifier classes (the
	// sensitive columns are what they must not single out); an aggregate by
	// all of its keys.
	use := all
	if rowLevel {
		if len(qi) == 0 {
			return true
		}
		use = nil
		for i, k := range keys {
			if k.form.col.class != dataset.Sensitive {
				use = append(use, i)
			}
		}
	}
	// Recompute the groups from the source rows.
	numCols := []int{}
	for ci, c := range ix.cols {
		if c.numeric && !c.isID && c.nums != nil {
			numCols = append(numCols, ci)
		}
	}
	var sensIdx []int
	for i, k := range keys {
		if k.form.col.class == dataset.Sensitive && rowLevel {
			sensIdx = append(sensIdx, i)
		}
	}
	groups := map[comboKey]*groupStat{}
	wanted := map[comboKey]bool{}
	for r := 0; r < t.Rows; r++ {
		if k, ok := combo(rowIDs, r, use); ok {
			wanted[k] = true
		}
	}
	for row := 0; row < ix.rows; row++ {
		k, ok := combo(srcIDs, row, use)
		if !ok || !wanted[k] {
			continue
		}
		g := groups[k]
		if g == nil {
			g = &groupStat{sum: make([]float64, len(numCols)), min: make([]float64, len(numCols)), max: make([]float64, len(numCols)),
				top1: make([]float64, len(numCols)), top2: make([]float64, len(numCols))}
			for j := range numCols {
				g.min[j], g.max[j] = math.Inf(1), math.Inf(-1)
				g.top1[j], g.top2[j] = math.Inf(-1), math.Inf(-1)
			}
			groups[k] = g
		}
		g.count++
		for j, ci := range numCols {
			x := ix.cols[ci].nums[row]
			if math.IsNaN(x) {
				continue
			}
			g.sum[j] += x
			g.min[j] = math.Min(g.min[j], x)
			g.max[j] = math.Max(g.max[j], x)
			if x > g.top1[j] {
				g.top1[j], g.top2[j] = x, g.top1[j]
			} else if x > g.top2[j] {
				g.top2[j] = x
			}
		}
		for _, si := range sensIdx {
			if g.distinctSens == nil {
				g.distinctSens = map[uint32]struct{}{}
			}
			if v := srcIDs[si][row]; v != 0 {
				g.distinctSens[v] = struct{}{}
			}
		}
	}
	sizes := make([]int, t.Rows) // 0: group not found in the source
	for r := 0; r < t.Rows; r++ {
		if k, ok := combo(rowIDs, r, use); ok {
			if g := groups[k]; g != nil {
				sizes[r] = g.count
			}
		}
	}
	var names []string
	for _, i := range use {
		names = append(names, fmt.Sprintf("%s→%s", keys[i].col.Name, keys[i].form.label()))
	}
	grounding := strings.Join(names, ", ")
	minSize, under, found := math.MaxInt, 0, 0
	firstUnder := -1
	for r, n := range sizes {
		if n == 0 {
			continue
		}
		found++
		minSize = min(minSize, n)
		if n < a.th.MinGroupSize {
			under++
			if firstUnder < 0 {
				firstUnder = r
			}
		}
	}
	if found > 0 {
		det, what := DetGroupSize, "groups"
		if rowLevel {
			det, what = DetKAnonymity, "rows whose quasi-identifier class has"
		}
		f := Finding{Detector: det, SourceColumn: grounding, Count: int64(under), Total: int64(found), Value: float64(minSize), Threshold: float64(a.th.MinGroupSize)}
		if rowLevel {
			f.Threshold = float64(a.th.K)
			under = 0
			for _, n := range sizes {
				if n > 0 && n < a.th.K {
					under++
				}
			}
			f.Count = int64(under)
		}
		if under > 0 {
			f.Severity = High
			f.Location = fmt.Sprintf("row %d", firstUnder+1)
			f.Message = fmt.Sprintf("%d of %d %s fewer than %g source records (smallest: %d); grounded as %s", under, found, what, f.Threshold, minSize, grounding)
		} else {
			f.Severity = Info
			f.Message = fmt.Sprintf("every one of %d %s at least %g source records (smallest: %d); grounded as %s", found, what, f.Threshold, minSize, grounding)
		}
		a.add(f)
	}
	if rowLevel && len(sensIdx) > 0 {
		minL, under := math.MaxInt, 0
		for _, g := range groups {
			l := len(g.distinctSens)
			minL = min(minL, l)
			if l < a.th.L {
				under++
			}
		}
		if len(groups) > 0 {
			f := Finding{Detector: DetLDiversity, SourceColumn: keys[sensIdx[0]].form.label(), Column: keys[sensIdx[0]].col.Name,
				Count: int64(under), Total: int64(len(groups)), Value: float64(minL), Threshold: float64(a.th.L), Severity: Info}
			f.Message = fmt.Sprintf("%d of %d quasi-identifier classes have fewer than %d distinct values of %s", under, len(groups), a.th.L, f.SourceColumn)
			if under > 0 {
				f.Severity = High
			}
			a.add(f)
		}
	}
	for _, m := range measures {
		if isCountColumn(m, sizes) {
			a.cells(m)
			continue
		}
		a.extremes(m, use, rowIDs, groups, numCols, combo)
	}
	return rowLevel
}

// isCountColumn: named like a count, or equal to the recomputed group size
// in at least 90% of rows.
func isCountColumn(c *Column, sizes []int) bool {
	if dataset.HasKeyword(c.Name, dataset.NameTokens(c.Name), countWords) && integerColumn(c) {
		return true
	}
	if sizes == nil || !integerColumn(c) {
		return false
	}
	eq, n := 0, 0
	for r, v := range c.Values {
		if sizes[r] == 0 {
			continue
		}
		n++
		if x, err := strconv.Atoi(v); err == nil && x == sizes[r] {
			eq++
		}
	}
	return n > 0 && eq*10 >= n*9
}

// cells flags counts under the threshold, and zeros.
func (a *tableAnalysis) cells(c *Column) {
	small, zeros, first := 0, 0, -1
	minV := math.MaxInt
	for r, v := range c.Values {
		x, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch {
		case x == 0:
			zeros++
		case x > 0 && x < a.th.MinCellCount:
			small++
			minV = min(minV, x)
			if first < 0 {
				first = r
			}
		}
	}
	if small > 0 {
		a.add(Finding{Detector: DetSmallCell, Severity: High, Column: c.Name, Location: fmt.Sprintf("row %d", first+1), Count: int64(small), Total: int64(len(c.Values)),
			Value: float64(minV), Threshold: float64(a.th.MinCellCount),
			Message: fmt.Sprintf("%d counts in column %s are under %d (smallest: %d)", small, c.Name, a.th.MinCellCount, minV)})
	}
	if zeros > 0 {
		a.add(Finding{Detector: DetZeroCell, Severity: Medium, Column: c.Name, Count: int64(zeros), Total: int64(len(c.Values)),
			Message: fmt.Sprintf("%d zero counts in column %s: a zero can disclose that a group lacks an attribute", zeros, c.Name)})
	}
}

// extremes flags a measure that equals the maximum or minimum of a source
// column within its groups (one person's exact value), and sums dominated
// by one or two contributors.
func (a *tableAnalysis) extremes(m *Column, use []int, rowIDs [][]uint32, groups map[comboKey]*groupStat, numCols []int,
	combo func([][]uint32, int, []int) (comboKey, bool)) {
	vals, tol, ok := numbers(m)
	if !ok {
		return
	}
	for j, ci := range numCols {
		sc := a.ix.cols[ci]
		hits, sums, evaluated := 0, 0, 0
		var sumGroups []*groupStat
		for r := range vals {
			k, ok := combo(rowIDs, r, use)
			if !ok || math.IsNaN(vals[r]) {
				continue
			}
			g := groups[k]
			if g == nil || g.count < 2 {
				continue
			}
			evaluated++
			if near(vals[r], g.max[j], tol[r]) || near(vals[r], g.min[j], tol[r]) {
				hits++
			}
			if near(vals[r], g.sum[j], tol[r]) {
				sums++
				sumGroups = append(sumGroups, g)
			}
		}
		if evaluated >= 2 && hits >= 2 && hits*2 >= evaluated {
			a.add(Finding{Detector: DetExtreme, Severity: High, Column: m.Name, SourceColumn: sc.name, Count: int64(hits), Total: int64(evaluated), Value: float64(hits) / float64(evaluated),
				Message: fmt.Sprintf("column %s equals the maximum or minimum of %s in %d of %d groups: each is one person's exact value", m.Name, sc.name, hits, evaluated)})
		}
		if evaluated > 0 && sums*10 >= evaluated*9 {
			a.dominance(m, sc, j, sumGroups)
		}
	}
}

func (a *tableAnalysis) dominance(m *Column, sc *srcCol, j int, groups []*groupStat) {
	dominated := 0
	worst := 0.0
	for _, g := range groups {
		total := g.sum[j]
		if total <= 0 || g.top1[j] < 0 {
			continue
		}
		top := g.top1[j]
		if a.th.NkN >= 2 && !math.IsInf(g.top2[j], -1) {
			top += math.Max(g.top2[j], 0)
		}
		share := top / total
		rest := total - g.top1[j] - math.Max(g.top2[j], 0)
		if share > a.th.NkK || rest < a.th.PPercent*g.top1[j] {
			dominated++
			worst = math.Max(worst, share)
		}
	}
	if dominated > 0 {
		a.add(Finding{Detector: DetDominance, Severity: High, Column: m.Name, SourceColumn: sc.name, Count: int64(dominated), Total: int64(len(groups)), Value: worst, Threshold: a.th.NkK,
			Message: fmt.Sprintf("column %s sums %s; in %d groups the largest contributors dominate (nk rule n=%d k=%g, p%% rule p=%g)", m.Name, sc.name, dominated, a.th.NkN, a.th.NkK, a.th.PPercent)})
	}
}

// affine flags numeric columns that are an affine (or, aligned by row,
// monotone) function of a raw numeric source column.
func (a *tableAnalysis) affine(measures []*Column) {
	if a.t.Rows < 20 || a.t.Rows != a.ix.rows {
		return
	}
	for _, m := range measures {
		vals, tol, ok := numbers(m)
		if !ok || hasNaN(vals) {
			continue
		}
		var own []float64 // the product column's ranks, computed once
		for _, sc := range a.ix.cols {
			if !sc.numeric || sc.isID || hasNaN(sc.nums) {
				continue
			}
			if own == nil {
				own = ranks(vals)
			}
			how := ""
			if r := pearson(own, sc.ranks()); math.Abs(r) > 0.9999 {
				how = fmt.Sprintf("row by row a monotone function of %s (rank correlation %.4f)", sc.name, r)
			} else if sortedAffine(vals, sc.nums, maxOf(tol)) {
				how = fmt.Sprintf("an affine transform of %s (exact fit of the sorted values)", sc.name)
			}
			if how != "" {
				a.add(Finding{Detector: DetAffine, Severity: High, Column: m.Name, SourceColumn: sc.name, Count: int64(len(vals)), Value: 1,
					Message: fmt.Sprintf("column %s is %s: the raw values in disguise", m.Name, how)})
				break
			}
		}
	}
}

// parse reads a column as numbers, once; tol is half a unit of the last
// decimal shown.
func (c *Column) parse() *parsedColumn {
	c.parseOnce.Do(func() { c.parsed = parseColumn(c.Values) })
	return c.parsed
}

func parseColumn(values []string) *parsedColumn {
	p := &parsedColumn{vals: make([]float64, len(values)), tol: make([]float64, len(values)), integer: true}
	n := 0
	for i, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			p.vals[i] = math.NaN()
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			p.vals, p.tol, p.integer = nil, nil, false
			return p
		}
		if p.integer {
			_, aerr := strconv.Atoi(v)
			p.integer = aerr == nil
		}
		p.vals[i] = x
		dec := 0
		if d := strings.IndexByte(v, '.'); d >= 0 && !strings.ContainsAny(v, "eE") {
			dec = len(v) - d - 1
		}
		p.tol[i] = 0.5*math.Pow10(-dec) + 1e-9*math.Abs(x)
		n++
	}
	p.numeric = n > 0
	p.integer = p.integer && p.numeric
	return p
}

// numbers returns the column's values and tolerances, if it is numeric.
func numbers(c *Column) ([]float64, []float64, bool) {
	p := c.parse()
	return p.vals, p.tol, p.numeric
}

func numericColumn(c *Column) bool { return c.parse().numeric }

func integerColumn(c *Column) bool { return c.parse().integer }

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func hasNaN(xs []float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) {
			return true
		}
	}
	return false
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

func ranks(xs []float64) []float64 {
	idx := make([]int32, len(xs))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(xs[a], xs[b]) })
	r := make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && xs[idx[j+1]] == xs[idx[i]] {
			j++
		}
		avg := float64(i+j) / 2
		for k := i; k <= j; k++ {
			r[idx[k]] = avg
		}
		i = j + 1
	}
	return r
}

func pearson(a, b []float64) float64 {
	n := float64(len(a))
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma, mb = ma/n, mb/n
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	if saa == 0 || sbb == 0 {
		return 0
	}
	return sab / math.Sqrt(saa*sbb)
}

// sortedAffine reports whether the sorted product values are an exact
// affine image (y = a·x + b, a ≠ 0) of the sorted source values, up to the
// product's rounding. An affine map preserves order (or reverses it), so no
// row alignment is needed.
func sortedAffine(y, x []float64, tol float64) bool {
	ys := append([]float64(nil), y...)
	xs := append([]float64(nil), x...)
	sort.Float64s(ys)
	sort.Float64s(xs)
	for _, rev := range []bool{false, true} {
		if rev {
			for i, j := 0, len(xs)-1; i < j; i, j = i+1, j-1 {
				xs[i], xs[j] = xs[j], xs[i]
			}
		}
		n := float64(len(xs))
		var mx, my float64
		for i := range xs {
			mx += xs[i]
			my += ys[i]
		}
		mx, my = mx/n, my/n
		var sxy, sxx float64
		for i := range xs {
			sxy += (xs[i] - mx) * (ys[i] - my)
			sxx += (xs[i] - mx) * (xs[i] - mx)
		}
		if sxx == 0 {
			return false
		}
		slope := sxy / sxx
		if slope == 0 {
			continue
		}
		icpt := my - slope*mx
		exact := true
		for i := range xs {
			if math.Abs(slope*xs[i]+icpt-ys[i]) > tol*1.01+1e-9 {
				exact = false
				break
			}
		}
		if exact {
			return true
		}
	}
	return false
}
