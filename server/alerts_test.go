package server

import (
	"strconv"
	"testing"
	"time"
)

// TestBurstWatch: the threshold-th failure within a window raises one alert,
// the next ones in that window none, failures older than the window do not
// count, and clients quiet for a window are forgotten.
func TestBurstWatch(t *testing.T) {
	w := newBurstWatch(authFailures)
	authFailThreshold, authFailWindow := authFailures.Threshold, authFailures.Window
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var raised []int
	for i := range authFailThreshold + 3 {
		if n, raise := w.add("10.0.0.1", t0.Add(time.Duration(i)*time.Second)); raise {
			raised = append(raised, n)
		}
	}
	if len(raised) != 1 || raised[0] != authFailThreshold {
		t.Fatalf("alerts raised with counts %v, want one at %d", raised, authFailThreshold)
	}
	// Slow failures, one per window, never add up.
	for i := range authFailThreshold * 2 {
		if _, raise := w.add("10.0.0.2", t0.Add(time.Duration(i)*authFailWindow)); raise {
			t.Fatalf("failure %d, one per window, raised an alert", i)
		}
	}
	// Many clients, then a quiet window: all but the last are forgotten.
	for i := range 1000 {
		w.add("192.0.2."+strconv.Itoa(i), t0)
	}
	later := t0.Add(100 * authFailWindow)
	w.add("10.0.0.3", later)
	if len(w.events) != 1 || len(w.alerted) != 0 {
		t.Fatalf("after a quiet window %d clients and %d alerts are remembered, want 1 and 0", len(w.events), len(w.alerted))
	}
}
