package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/minio/sio"
)

// ErrKey: a key that cannot be used — a master key file readable by
// others, of the wrong size, or a wrapped key that does not open.
var ErrKey = errors.New("unusable key")

// MasterKey wraps data keys. It never prints.
type MasterKey struct{ k [32]byte }

// LogValue keeps the key out of logs.
func (MasterKey) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the key out of fmt.
func (MasterKey) String() string { return "[redacted]" }

// LoadMasterKey reads a master key: 32 raw bytes or 64 hex digits, in a
// file only its owner may read (mode 0600 or stricter).
func LoadMasterKey(path string) (MasterKey, error) {
	var m MasterKey
	fi, err := os.Stat(path)
	if err != nil {
		return m, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return m, fmt.Errorf("master key %s is readable by others (mode %v): make it 0600: %w", path, fi.Mode().Perm(), ErrKey)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	raw := data
	if t := strings.TrimSpace(string(data)); len(t) == 64 {
		if b, err := hex.DecodeString(t); err == nil {
			raw = b
		}
	}
	if len(raw) != 32 {
		return m, fmt.Errorf("master key %s: want 32 bytes or 64 hex digits: %w", path, ErrKey)
	}
	copy(m.k[:], raw)
	return m, nil
}

// NewMasterKeyFile writes a new random master key to path (0600); an
// existing file is never replaced.
func NewMasterKeyFile(path string) (MasterKey, error) {
	var m MasterKey
	rand.Read(m.k[:])
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return MasterKey{}, err
	}
	_, err = f.WriteString(hex.EncodeToString(m.k[:]) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return MasterKey{}, err
	}
	return m, nil
}

// DataKey seals one object. It never prints.
type DataKey struct{ k [32]byte }

// LogValue keeps the key out of logs.
func (DataKey) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the key out of fmt.
func (DataKey) String() string { return "[redacted]" }

// Secret is the key's bytes, for a use that needs them as a key of its
// own (a scenario's pseudonym key keys HMAC-SHA256). Never store or log
// them.
func (d DataKey) Secret() []byte { return append([]byte(nil), d.k[:]...) }

// NewDataKey is a random data key.
func NewDataKey() DataKey {
	var d DataKey
	rand.Read(d.k[:])
	return d
}

// Wrap seals a data key under the master key, for keeping beside the object.
func (m MasterKey) Wrap(d DataKey) ([]byte, error) {
	var out bytes.Buffer
	if _, err := sio.Encrypt(&out, bytes.NewReader(d.k[:]), sio.Config{Key: m.k[:]}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Unwrap opens a wrapped data key.
func (m MasterKey) Unwrap(wrapped []byte) (DataKey, error) {
	var d DataKey
	var out bytes.Buffer
	if _, err := sio.Decrypt(&out, bytes.NewReader(wrapped), sio.Config{Key: m.k[:]}); err != nil || out.Len() != 32 {
		return d, fmt.Errorf("a wrapped data key does not open with this master key: %w", ErrKey)
	}
	copy(d.k[:], out.Bytes())
	return d, nil
}
