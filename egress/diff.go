package egress

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// differencing compares a new table with tables already released from the
// same source: where both have the same key columns and a count column of
// the same name, a matched group whose count changed by less than the
// threshold isolates those few records (a released table minus one person
// gives that person's attribute).
func differencing(th Thresholds, t *Table, released []*Product) []Finding {
	var out []Finding
	newKeys, newCounts := splitKeyCounts(t)
	if len(newKeys) == 0 || len(newCounts) == 0 {
		return nil
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
