package egress

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/sluicehq/sluice/dataset"
)

// differencing compares a new table with tables already released from the
// same source, two ways:
//
//   - as sets of source records: where the groups of both tables can be
//     recovered from the source (their keys grounded, their counts equal to
//     the recomputed group sizes, so no hidden filter), any new group that
//     differs from a released one by fewer than the threshold of records
//     isolates those records, whatever the tables' keys;
//   - by counts: where both tables have the same key columns and a count
//     column of the same name, a matched group whose count changed by less
//     than the threshold (a released table minus one person gives that
//     person's attribute).
func differencing(ix *Index, th Thresholds, t *Table, released []*Product) []Finding {
	out := differencingSets(ix, th, t, released)
	newKeys, newCounts := splitKeyCounts(t)
	if len(newKeys) == 0 || len(newCounts) == 0 {
		return out
	}
	for _, rp := range released {
		for _, rt := range rp.Tables {
			rKeys, rCounts := splitKeyCounts(rt)
			if !sameNames(newKeys, rKeys) {
				continue
			}
			for _, cname := range newCounts {
				if !contains(rCounts, cname) {
					continue
				}
				old := keyedCounts(rt, rKeys, cname)
				cur := keyedCounts(t, newKeys, cname)
				small, matched := 0, 0
				minDiff := math.MaxInt
				var first string
				for k, v := range cur {
					o, ok := old[k]
					if !ok {
						continue
					}
					matched++
					d := v - o
					if d < 0 {
						d = -d
					}
					if d > 0 && d < th.DiffMin {
						small++
						minDiff = min(minDiff, d)
						if first == "" || k < first {
							first = k
						}
					}
				}
				if small > 0 {
					out = append(out, Finding{Detector: DetDifferencing, Severity: High, Table: t.Name, Column: cname,
						Location: fmt.Sprintf("released product %s", baseName(rp.Path)), Count: int64(small), Total: int64(matched),
						Value: float64(minDiff), Threshold: float64(th.DiffMin),
						Message: fmt.Sprintf("%d of %d groups differ from released product %s by fewer than %d records in column %s (smallest difference: %d): the difference isolates them",
							small, matched, baseName(rp.Path), th.DiffMin, cname, minDiff)})
				}
			}
		}
	}
	return out
}

// splitKeyCounts separates a table's key columns (non-numeric) from its
// integer count columns.
func splitKeyCounts(t *Table) (keys, counts []string) {
	for _, c := range t.Columns {
		switch {
		case integerColumn(c) && isCountColumn(c, nil):
			counts = append(counts, c.Name)
		case !numericColumn(c):
			keys = append(keys, c.Name)
		}
	}
	sort.Strings(keys)
	return keys, counts
}

func keyedCounts(t *Table, keys []string, count string) map[string]int {
	cc := t.column(count)
	var kcs []*Column
	for _, k := range keys {
		kcs = append(kcs, t.column(k))
	}
	out := make(map[string]int, t.Rows)
	for r := 0; r < t.Rows && r < len(cc.Values); r++ {
		parts := make([]string, len(kcs))
		for i, kc := range kcs {
			parts[i] = canon(kc.Values[r])
		}
		if n, err := strconv.Atoi(strings.TrimSpace(cc.Values[r])); err == nil {
			out[strings.Join(parts, "\x00")] += n
		}
	}
	return out
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, "/\\"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// maxSetComparisons bounds the group pairs compared as record sets.
const maxSetComparisons = 4_000_000

// differencingSets compares recovered groups as sets of source rows.
func differencingSets(ix *Index, th Thresholds, t *Table, released []*Product) []Finding {
	if len(released) == 0 {
		return nil
	}
	cur := recoverGroups(ix, t)
	if len(cur) == 0 {
		return nil
	}
	var out []Finding
	for _, rp := range released {
		for _, rt := range rp.Tables {
			old := recoverGroups(ix, rt)
			if len(old)*len(cur) > maxSetComparisons {
				continue
			}
			small, minDiff := 0, math.MaxInt
			for _, g := range cur {
				for _, h := range old {
					gc, hc := int(g.GetCardinality()), int(h.GetCardinality())
					if d := gc - hc; d >= th.DiffMin || -d >= th.DiffMin {
						continue
					}
					diff := int(roaring.AndNot(g, h).GetCardinality() + roaring.AndNot(h, g).GetCardinality())
					if diff > 0 && diff < th.DiffMin {
						small++
						minDiff = min(minDiff, diff)
					}
				}
			}
			if small > 0 {
				out = append(out, Finding{Detector: DetDifferencing, Severity: High, Table: t.Name, Kind: "record sets",
					Location: fmt.Sprintf("released product %s", baseName(rp.Path)), Count: int64(small), Total: int64(len(cur)),
					Value: float64(minDiff), Threshold: float64(th.DiffMin),
					Message: fmt.Sprintf("%d groups, recovered as sets of source records, differ from a group of released product %s by fewer than %d records (smallest difference: %d): the difference isolates them",
						small, baseName(rp.Path), th.DiffMin, minDiff)})
			}
		}
	}
	return out
}

// recoverGroups returns each row's group as the set of its source rows,
// when the table's keys are grounded and a count column confirms the groups
// (equal to the recovered sizes in every row); nil otherwise.
func recoverGroups(ix *Index, t *Table) []*roaring.Bitmap {
	t.groupsOnce.Do(func() { t.groups = recoverGroupsOnce(ix, t) })
	return t.groups
}

func recoverGroupsOnce(ix *Index, t *Table) []*roaring.Bitmap {
	if t.Rows == 0 || t.Rows > 100000 {
		return nil
	}
	a := &tableAnalysis{ix: ix, t: t}
	var keys []keyCol
	var counts []*Column
	for _, c := range t.Columns {
		if integerColumn(c) && isCountColumn(c, nil) {
			counts = append(counts, c)
			continue
		}
		if numericColumn(c) && dataset.HasKeyword(c.Name, dataset.NameTokens(c.Name), measureWords) {
			continue
		}
		if k, ok := a.ground(c); ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 || len(counts) == 0 {
		return nil
	}
	groups := make([]*roaring.Bitmap, t.Rows)
	for r := 0; r < t.Rows; r++ {
		var g *roaring.Bitmap
		for _, k := range keys {
			b := k.form.values[ix.hash(canon(k.col.Values[r]))]
			if b == nil {
				return nil
			}
			if g == nil {
				g = b.Clone()
			} else {
				g.And(b)
			}
		}
		groups[r] = g
	}
	for _, c := range counts {
		confirmed := true
		for r, v := range c.Values {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || uint64(n) != groups[r].GetCardinality() {
				confirmed = false
				break
			}
		}
		if confirmed {
			return groups
		}
	}
	return nil
}
