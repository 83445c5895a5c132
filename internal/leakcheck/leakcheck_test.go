package leakcheck

import "testing"

func TestCount(t *testing.T) {
	f := New([]string{"13812345678", "张伟", "", "13812345678"})
	tests := map[string]int{
		"nothing here":            0,
		"call 13812345678 now":    1,
		"张伟 and 张伟, 1381234567":   2,
		"13812345678,13812345678": 2,
		"1381234567813812345678":  2,
	}
	for in, want := range tests {
		if got := f.Count([]byte(in)); got != want {
			t.Errorf("Count(%q) = %d, want %d", in, got, want)
		}
	}
}
