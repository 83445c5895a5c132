package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// These run against the real SQLite (pure Go, in-process).

func open(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestTenantsAndUsers(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	acme, err := s.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenant(ctx, "acme"); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate tenant: %v, want ErrConflict", err)
	}
	if _, err := s.CreateTenant(ctx, "Bad Name"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad tenant name: %v", err)
	}
	for _, tc := range []struct {
		name   string
		role   Role
		tenant string
		want   error
	}{
		{"alice", RoleScientist, acme.ID, nil},
		{"root", RoleAdmin, "", nil},
		{"bob", RoleScientist, "", ErrInvalidArgument},       // a scientist needs a tenant
		{"carol", RoleReviewer, acme.ID, ErrInvalidArgument}, // platform roles have none
		{"dave", "owner", "", ErrInvalidArgument},
		{"erin", RoleScientist, "tnt_missing", ErrNotFound},
		{"alice", RoleAuditor, "", ErrConflict},
	} {
		_, err := s.CreateUser(ctx, tc.name, tc.role, tc.tenant)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("CreateUser(%s, %s, %q) = %v, want %v", tc.name, tc.role, tc.tenant, err, tc.want)
		}
	}
	users, err := s.ListUsers(ctx, acme.ID)
	if err != nil || len(users) != 1 || users[0].Name != "alice" {
		t.Errorf("acme's users: %+v, %v", users, err)
	}
	if all, _ := s.ListUsers(ctx, ""); len(all) != 2 {
		t.Errorf("all users: %+v", all)
	}
	if n, _ := s.CountUsers(ctx); n != 2 {
		t.Errorf("CountUsers = %d", n)
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	u, _ := s.CreateUser(ctx, "root", RoleAdmin, "")
	tok, secret, err := s.CreateToken(ctx, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, secret.Reveal()); err != nil || got.ID != u.ID {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	if _, err := s.Authenticate(ctx, secret.Reveal()+"x"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a wrong secret: %v", err)
	}
	if fmt.Sprint(secret) == secret.Reveal() {
		t.Error("a secret prints itself")
	}
	// Only the hash is kept: the secret is nowhere in the database files.
	s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(FULL)`)
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte(secret.Reveal())) {
			t.Errorf("%s holds the token's secret", f)
		}
	}
	if err := s.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret.Reveal()); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a revoked token: %v", err)
	}
	// Expired tokens and revoked users authenticate nobody.
	_, short, _ := s.CreateToken(ctx, u.ID, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if _, err := s.Authenticate(ctx, short.Reveal()); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("an expired token: %v", err)
	}
	_, live, _ := s.CreateToken(ctx, u.ID, time.Hour)
	if err := s.RevokeUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, live.Reveal()); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a revoked user's token: %v", err)
	}
	if _, _, err := s.CreateToken(ctx, u.ID, time.Hour); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a token for a revoked user: %v", err)
	}
	if _, _, err := s.CreateToken(ctx, u.ID, 10*MaxTokenTTL); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a token for ten years: %v", err)
	}
}

// TestReopen: a database opens again at its schema, with its data.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	s.CreateTenant(ctx, "acme")
	s.Close()
	again, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if ts, _ := again.ListTenants(ctx); len(ts) != 1 {
		t.Errorf("tenants after reopening: %+v", ts)
	}
}
