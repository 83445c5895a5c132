package mask

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"

	"github.com/sluicehq/sluice/dataset"
)

// MinKeyBytes is the shortest pseudonym key accepted.
const MinKeyBytes = 32

// Key is a pseudonymisation key (per scenario in production). It never
// prints: fmt and slog show "[redacted]".
type Key []byte

func (Key) String() string               { return "[redacted]" }
func (Key) GoString() string             { return "mask.Key([redacted])" }
func (Key) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (k Key) Format(f fmt.State, _ rune) { f.Write([]byte(k.String())) }

// NewKey returns a fresh random key.
func NewKey() (Key, error) {
	k := make(Key, MinKeyBytes)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// LoadKey reads a key file: hex text (64 or more hex digits) or raw bytes
// (32 or more).
func LoadKey(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &dataset.InputError{File: path, Offset: -1, Msg: "cannot read key: " + err.Error()}
	}
	if t := bytes.TrimSpace(data); len(t) >= 2*MinKeyBytes {
		if k, err := hex.DecodeString(string(t)); err == nil {
			return Key(k), nil
		}
	}
	if len(data) < MinKeyBytes {
		return nil, &dataset.InputError{File: path, Offset: -1, Msg: fmt.Sprintf("key is too short: need %d random bytes or %d hex digits", MinKeyBytes, 2*MinKeyBytes)}
	}
	return Key(data), nil
}
