package server

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeys: the key made on the first start is the one read on the next,
// its public half is written beside it, and a file that is not the key it
// should be is an error naming the file.
func TestKeys(t *testing.T) {
	dir := t.TempDir()
	priv, err := loadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadOrCreateKey(dir)
	if err != nil || !bytes.Equal(again, priv) {
		t.Fatalf("second start: %v (same key: %v)", err, bytes.Equal(again, priv))
	}
	pub, err := LoadPublicKey(filepath.Join(dir, PubKeyFile))
	if err != nil || !bytes.Equal(pub, priv.Public().(ed25519.PublicKey)) {
		t.Fatalf("public key: %v", err)
	}
	// The private key where the public one should be, and garbage.
	if _, err := LoadPublicKey(filepath.Join(dir, KeyFile)); err == nil || !strings.Contains(err.Error(), KeyFile+": not a PEM public key") {
		t.Fatalf("private key read as public: %v", err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, KeyFile), []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), KeyFile+": not a PEM private key") {
		t.Fatalf("garbage key: %v", err)
	}
	// A first start that cannot write the public key leaves no private key.
	half := t.TempDir()
	if err := os.Mkdir(filepath.Join(half, PubKeyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKey(half); err == nil {
		t.Fatal("a first start that cannot write the public key succeeded")
	}
	if _, err := os.Stat(filepath.Join(half, KeyFile)); !os.IsNotExist(err) {
		t.Fatalf("private key left without its public key: %v", err)
	}
}
