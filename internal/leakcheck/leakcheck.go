// Package leakcheck finds raw values in bytes, for tests that prove no raw
// value leaks into outputs, logs, errors or reports.
package leakcheck

import (
	"bytes"
	"strings"
)

const marker = "\x00\x01leak\x01\x00"

// Finder searches for many values at once (a trie, not one scan per value).
type Finder struct{ r *strings.Replacer }

// New builds a finder for the non-empty values.
func New(values []string) *Finder {
	var pairs []string
	seen := map[string]bool{}
	for _, v := range values {
		if v != "" && !seen[v] {
			seen[v] = true
			pairs = append(pairs, v, marker)
		}
	}
	return &Finder{strings.NewReplacer(pairs...)}
}

// Count returns how many occurrences of the values data contains
// (non-overlapping, leftmost first).
func (f *Finder) Count(data []byte) int {
	out := f.r.Replace(string(data))
	return strings.Count(out, marker) - bytes.Count(data, []byte(marker))
}
