// Package corrupt writes byte-flipped variants of a valid file, for tests
// that prove a reader turns any corruption into an error and never crashes.
package corrupt

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Variants writes n deterministic variants of the file good into dir, each
// with one to four bytes overwritten at random (seeded by seed), and calls
// check with each path. The extension of good is kept; each variant is
// removed after its check.
func Variants(t testing.TB, good, dir string, seed uint64, n int, check func(i int, path string)) {
	t.Helper()
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	ext := filepath.Ext(good)
	base := strings.TrimSuffix(filepath.Base(good), ext)
	r := rand.New(rand.NewPCG(seed, uint64(len(ext))))
	for i := 0; i < n; i++ {
		m := append([]byte(nil), b...)
		for k := 0; k < 1+r.IntN(4); k++ {
			m[r.IntN(len(m))] = byte(r.IntN(256))
		}
		p := filepath.Join(dir, fmt.Sprintf("%s-v%d%s", base, i, ext))
		if err := os.WriteFile(p, m, 0o600); err != nil {
			t.Fatal(err)
		}
		check(i, p)
		os.Remove(p)
	}
}
