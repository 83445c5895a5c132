package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "master.key")
	m, err := NewMasterKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMasterKeyFile(p); err == nil {
		t.Error("an existing master key was replaced")
	}
	again, err := LoadMasterKey(p)
	if err != nil || again != m {
		t.Fatalf("reloading: %v", err)
	}
	if fmt.Sprint(m) != "[redacted]" {
		t.Error("a master key prints itself")
	}
	os.Chmod(p, 0o644)
	if _, err := LoadMasterKey(p); !errors.Is(err, ErrKey) {
		t.Errorf("a master key readable by others: %v, want ErrKey", err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("0123"), 0o600)
	if _, err := LoadMasterKey(short); !errors.Is(err, ErrKey) {
		t.Errorf("a short key: %v", err)
	}
	raw := filepath.Join(dir, "raw.key")
	os.WriteFile(raw, bytes.Repeat([]byte{7}, 32), 0o600)
	if _, err := LoadMasterKey(raw); err != nil {
		t.Errorf("32 raw bytes: %v", err)
	}
}

func TestWrap(t *testing.T) {
	dir := t.TempDir()
	m, _ := NewMasterKeyFile(filepath.Join(dir, "a.key"))
	other, _ := NewMasterKeyFile(filepath.Join(dir, "b.key"))
	d := NewDataKey()
	w, err := m.Wrap(d)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, d.k[:]) {
		t.Error("the wrapped key holds the key")
	}
	if got, err := m.Unwrap(w); err != nil || got != d {
		t.Fatalf("Unwrap: %v", err)
	}
	if _, err := other.Unwrap(w); !errors.Is(err, ErrKey) {
		t.Errorf("another master key opened it: %v", err)
	}
}

func TestSealedObjects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 3<<20+12345)
	rand.Read(plain)
	marker := []byte("110101199003072316,张三,13800138000") // a plaintext row
	copy(plain[1<<20:], marker)
	key := NewDataKey()
	if err := PutSealed(ctx, s, "datasets/residents/v1", key, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	stored, _ := os.ReadFile(filepath.Join(dir, "datasets", "residents", "v1"))
	if bytes.Contains(stored, marker) {
		t.Fatal("the store holds plaintext")
	}
	o, err := GetSealed(ctx, s, "datasets/residents/v1", key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, plain) || o.Size() != int64(len(plain)) {
		t.Fatalf("sequential read: %d bytes, %v", len(got), err)
	}
	for _, off := range []int64{0, 1, 65535, 65536, 1 << 20, int64(len(plain)) - 100} {
		buf := make([]byte, 100)
		if n, err := o.ReadAt(buf, off); (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
			t.Errorf("ReadAt %d: %d, %v", off, n, err)
		}
	}
	o.Close()
	// A wrong key and a changed byte are both errors, not wrong data.
	wrong, _ := GetSealed(ctx, s, "datasets/residents/v1", NewDataKey())
	if _, err := io.ReadAll(wrong); err == nil {
		t.Error("a wrong data key read the object")
	}
	wrong.Close()
	stored[200000] ^= 1
	os.WriteFile(filepath.Join(dir, "datasets", "residents", "v1"), stored, 0o600)
	changed, _ := GetSealed(ctx, s, "datasets/residents/v1", key)
	if _, err := io.ReadAll(changed); err == nil {
		t.Error("a changed byte went unnoticed")
	}
	changed.Close()
}

func TestStoreNames(t *testing.T) {
	s, _ := NewLocal(t.TempDir())
	for _, bad := range []string{"../escape", "/abs", "a//b", "UPPER", ""} {
		if err := s.Put(context.Background(), bad, bytes.NewReader(nil)); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	if _, err := s.Get(context.Background(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing object: %v", err)
	}
	if _, err := Open("s3://bucket"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("s3: %v", err)
	}
}
