package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// trail writes n records to a new trail and closes it (signing its head).
func trail(t *testing.T, n int) (path string, pub ed25519.PublicKey, priv ed25519.PrivateKey) {
	t.Helper()
	pub, priv, _ = ed25519.GenerateKey(rand.Reader)
	path = filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(context.Background(), path, priv)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := l.Append(context.Background(), Record{Actor: fmt.Sprintf("actor-%04d", i), Action: "create-tenant", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, pub, priv
}

// tamper opens the trail's database directly and runs SQL on it.
func tamper(t *testing.T, path string, fn func(l *Log)) {
	t.Helper()
	l, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.db.Close()
	fn(l)
}

func verify(t *testing.T, path string, pub ed25519.PublicKey) (int64, error) {
	t.Helper()
	l, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.db.Close()
	return l.Verify(context.Background(), pub)
}

func wantProblem(t *testing.T, err error, seq int64, words string) {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) || !errors.Is(err, ErrTampered) || p.Seq != seq || !strings.Contains(p.Reason, words) {
		t.Errorf("got %v, want a problem at record %d (%q)", err, seq, words)
	}
}

func TestVerifyIntact(t *testing.T) {
	path, pub, _ := trail(t, 200)
	if n, err := verify(t, path, pub); err != nil || n != 200 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	_, err := verify(t, path, other)
	wantProblem(t, err, Every, "signed checkpoint")
}

func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name  string
		do    func(t *testing.T, l *Log)
		seq   int64
		words string
	}{
		{"edited", func(t *testing.T, l *Log) {
			l.db.Exec(`UPDATE records SET body = replace(body, 'actor-0042', 'actor-9999') WHERE seq = 42`)
		}, 42, "edited"},
		{"deleted", func(t *testing.T, l *Log) { l.db.Exec(`DELETE FROM records WHERE seq = 42`) }, 42, "numbered 43"},
		{"reordered", func(t *testing.T, l *Log) {
			l.db.Exec(`UPDATE records SET seq = -1 WHERE seq = 41`)
			l.db.Exec(`UPDATE records SET seq = 41 WHERE seq = 42`)
			l.db.Exec(`UPDATE records SET seq = 42 WHERE seq = -1`)
		}, 41, "does not follow"},
		{"checkpoint removed", func(t *testing.T, l *Log) { l.db.Exec(`DELETE FROM checkpoints WHERE seq = 128`) }, 128, "missing"},
		{"cut short", func(t *testing.T, l *Log) { l.db.Exec(`DELETE FROM records WHERE seq > 150`) }, 151, "cut short"},
		{"rewritten consistently without the key", func(t *testing.T, l *Log) {
			// Change record 70 and rebuild every hash after it, as someone
			// with the database but without the key would.
			rows, _ := l.db.Query(`SELECT seq, body FROM records ORDER BY seq`)
			var recs []Stored
			for rows.Next() {
				var s Stored
				rows.Scan(&s.Seq, &s.Body)
				recs = append(recs, s)
			}
			rows.Close()
			prev := ""
			for _, s := range recs {
				body := s.Body
				if s.Seq == 70 {
					body = bytes.ReplaceAll(body, []byte("actor-0070"), []byte("actor-EVIL"))
				}
				body = []byte(strings.Replace(string(body), string(mustField(body, "prev")), prev, 1))
				h := hash(body)
				l.db.Exec(`UPDATE records SET body = ?, hash = ? WHERE seq = ?`, body, h, s.Seq)
				prev = h
			}
		}, 128, "does not match the chain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, pub, _ := trail(t, 200)
			tamper(t, path, func(l *Log) { tc.do(t, l) })
			_, err := verify(t, path, pub)
			wantProblem(t, err, tc.seq, tc.words)
		})
	}
}

// mustField is the raw JSON string value of a field of a record body.
func mustField(body []byte, field string) []byte {
	key := []byte(`"` + field + `":"`)
	i := bytes.Index(body, key)
	if i < 0 {
		return nil
	}
	rest := body[i+len(key):]
	return rest[:bytes.IndexByte(rest, '"')]
}

// TestOneByteOfTheFile: one byte changed in the database file itself is
// found, and the record it is in named.
func TestOneByteOfTheFile(t *testing.T) {
	path, pub, _ := trail(t, 100)
	tamper(t, path, func(l *Log) { l.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`) })
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("actor-0077"))
	if i < 0 {
		t.Fatal("record 77 not found in the file")
	}
	data[i+len("actor-00")] = '8'
	os.WriteFile(path, data, 0o600)
	_, err = verify(t, path, pub)
	wantProblem(t, err, 77, "edited")
}

func TestExportSince(t *testing.T) {
	path, _, priv := trail(t, 3)
	l, _ := Open(context.Background(), path, priv)
	cut := time.Now()
	l.Append(context.Background(), Record{Actor: "late", Action: "x", Result: "ok"})
	var b bytes.Buffer
	if err := l.Export(context.Background(), cut, &b); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], `"actor":"late"`) {
		t.Errorf("export since the cut: %q", b.String())
	}
}

// TestConcurrentAppends: records appended at the same time (written in
// batches) each get their own place in one chain that verifies.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(ctx, path, priv)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	seqs := make(chan int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.Append(ctx, Record{Actor: "usr-" + strconv.Itoa(i), Action: "read", Result: "ok"})
			if err != nil {
				t.Error(err)
			}
			seqs <- r.Seq
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		if s < 1 || s > n || seen[s] {
			t.Fatalf("seq %d given twice or out of range", s)
		}
		seen[s] = true
	}
	l.Close()
	if got, err := verify(t, path, pub); err != nil || got != n {
		t.Fatalf("verify: %d records, %v", got, err)
	}
}
