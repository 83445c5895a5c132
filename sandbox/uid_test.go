package sandbox

import (
	"errors"
	"os"
	"sync"
	"testing"
)

func TestUIDLeases(t *testing.T) {
	state := t.TempDir()
	l := &uidLeases{dir: t.TempDir(), r: UIDRange{First: MinJobUID, Count: 2}}
	job := func(id string) string {
		if err := os.MkdirAll(JobDir(state, id), 0o700); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, err := l.acquire(state, job("job-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.acquire(state, job("job-b"))
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a < MinJobUID || b < MinJobUID || a >= MinJobUID+2 || b >= MinJobUID+2 {
		t.Fatalf("uids %d and %d: want two different uids of the range", a, b)
	}
	if _, err := l.acquire(state, job("job-c")); !errors.Is(err, ErrLimit) {
		t.Fatalf("a third job in a range of two: got %v, want ErrLimit", err)
	}
	// Another job's release leaves a lease alone.
	if err := l.release(a, "job-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire(state, "job-c"); !errors.Is(err, ErrLimit) {
		t.Fatalf("job-b released job-a's uid: got %v", err)
	}
	// A released uid is handed out again.
	if err := l.release(a, "job-a"); err != nil {
		t.Fatal(err)
	}
	if c, err := l.acquire(state, "job-c"); err != nil || c != a {
		t.Fatalf("after job-a's release: %d, %v; want %d", c, err, a)
	}
	// A lease whose job has no workspace any more is stale and taken over.
	os.RemoveAll(JobDir(state, "job-b"))
	if d, err := l.acquire(state, job("job-d")); err != nil || d != b {
		t.Fatalf("stale lease of job-b: %d, %v; want %d", d, err, b)
	}
}

// TestUIDLeasesConcurrent: acquirers at once never get the same uid.
func TestUIDLeasesConcurrent(t *testing.T) {
	state := t.TempDir()
	l := &uidLeases{dir: t.TempDir(), r: UIDRange{First: MinJobUID, Count: 64}}
	var mu sync.Mutex
	seen := map[uint32]string{}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "job-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			os.MkdirAll(JobDir(state, id), 0o700)
			uid, err := l.acquire(state, id)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, dup := seen[uid]; dup {
				t.Errorf("uid %d leased to %s and %s", uid, other, id)
			}
			seen[uid] = id
		}()
	}
	wg.Wait()
}

func TestUIDRangeValidate(t *testing.T) {
	for _, r := range []UIDRange{{First: 65534, Count: 1}, {First: MinJobUID, Count: 0}, {First: 1<<31 - 10, Count: 100}} {
		if err := r.validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v, want ErrInvalidArgument", r, err)
		}
	}
	if err := DefaultUIDRange.validate(); err != nil {
		t.Error(err)
	}
}
