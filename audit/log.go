package audit

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// Log is the trail in a SQLite database of its own: records and signed
// checkpoints. It has no way to delete or change a record.
type Log struct {
	db  *sql.DB
	key ed25519.PrivateKey // nil: a Log that only reads (verify, export)
	mu  sync.Mutex         // appends are one chain: held by the one writing a batch

	qmu   sync.Mutex
	queue []*appendReq // records waiting for the next batch
}

// appendReq is one record waiting to be written, and where its outcome
// goes.
type appendReq struct {
	r    Record
	done chan appendRes
}

type appendRes struct {
	r   Record
	err error
}

const schema = `
CREATE TABLE IF NOT EXISTS records (
	seq  INTEGER PRIMARY KEY,
	body BLOB NOT NULL,
	hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
	seq       INTEGER PRIMARY KEY,
	hash      TEXT NOT NULL,
	time      INTEGER NOT NULL,
	signature BLOB NOT NULL
);`

// Open opens the trail at path; with key it appends and signs, without it
// only reads (verify, export).
func Open(ctx context.Context, path string, key ed25519.PrivateKey) (*Log, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(5000)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	return &Log{db: db, key: key}, nil
}

// Close signs the head (when this Log writes) and closes the database.
func (l *Log) Close() error {
	var err error
	if l.key != nil {
		err = l.Checkpoint(context.Background())
	}
	return errors.Join(err, l.db.Close())
}

// Append adds a record at the end of the chain and returns it as written;
// every Every records it signs a checkpoint in the same transaction. An
// error means nothing was written: the caller must not act.
//
// Appends made at the same time are written together, in one transaction
// (one sync to disk): whoever takes the chain next writes every record
// waiting, and each caller gets its own record back, or the batch's error.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	if l.key == nil {
		return Record{}, errors.New("audit: this trail is open read-only")
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	req := &appendReq{r: r, done: make(chan appendRes, 1)}
	l.qmu.Lock()
	l.queue = append(l.queue, req)
	l.qmu.Unlock()
	l.mu.Lock()
	l.qmu.Lock()
	batch := l.queue
	l.queue = nil
	l.qmu.Unlock()
	if len(batch) > 0 {
		// One caller's cancellation does not fail the others' records.
		written, err := l.write(context.WithoutCancel(ctx), batch)
		for i, b := range batch {
			if err != nil {
				b.done <- appendRes{err: err}
			} else {
				b.done <- appendRes{r: written[i]}
			}
		}
	}
	l.mu.Unlock()
	res := <-req.done
	return res.r, res.err
}

// write appends a batch of records in one transaction (l.mu held).
func (l *Log) write(ctx context.Context, batch []*appendReq) ([]Record, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var seq int64
	var prev sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	out := make([]Record, len(batch))
	for i, b := range batch {
		r := b.r
		seq++
		r.Seq, r.Prev = seq, prev.String
		body, err := r.body()
		if err != nil {
			return nil, err
		}
		h := hash(body)
		if _, err := tx.ExecContext(ctx, `INSERT INTO records (seq, body, hash) VALUES (?, ?, ?)`, r.Seq, body, h); err != nil {
			return nil, err
		}
		if r.Seq%Every == 0 {
			if err := l.sign(ctx, tx, r.Seq, h); err != nil {
				return nil, err
			}
		}
		prev = sql.NullString{String: h, Valid: true}
		out[i] = r
	}
	return out, tx.Commit()
}

func (l *Log) sign(ctx context.Context, tx *sql.Tx, seq int64, h string) error {
	c := Checkpoint{Seq: seq, Hash: h, Time: time.Now().UTC()}
	c.Signature = ed25519.Sign(l.key, c.signed())
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO checkpoints (seq, hash, time, signature) VALUES (?, ?, ?, ?)`,
		c.Seq, c.Hash, c.Time.UnixNano(), c.Signature)
	return err
}

// Checkpoint signs the current head, if it is not signed yet.
func (l *Log) Checkpoint(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var seq int64
	var h string
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1`).Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := l.sign(ctx, tx, seq, h); err != nil {
		return err
	}
	return tx.Commit()
}

// Verify checks the whole trail against the server's public key.
func (l *Log) Verify(ctx context.Context, pub ed25519.PublicKey) (int64, error) {
	var cps []Checkpoint
	rows, err := l.db.QueryContext(ctx, `SELECT seq, hash, time, signature FROM checkpoints ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var c Checkpoint
		var t int64
		if err := rows.Scan(&c.Seq, &c.Hash, &t, &c.Signature); err != nil {
			rows.Close()
			return 0, err
		}
		c.Time = time.Unix(0, t).UTC()
		cps = append(cps, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return Verify(ctx, l.each(ctx), cps, pub)
}

// each walks the stored records in order.
func (l *Log) each(ctx context.Context) func(func(Stored) error) error {
	return func(fn func(Stored) error) error {
		rows, err := l.db.QueryContext(ctx, `SELECT seq, body, hash FROM records ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s Stored
			if err := rows.Scan(&s.Seq, &s.Body, &s.Hash); err != nil {
				return err
			}
			if err := fn(s); err != nil {
				return err
			}
		}
		return rows.Err()
	}
}

// eachSince walks the stored records whose time is at or after since, in
// order, each with its decoded body.
func (l *Log) eachSince(ctx context.Context, since time.Time, fn func(Stored, Record) error) error {
	return l.each(ctx)(func(s Stored) error {
		var r Record
		if err := json.Unmarshal(s.Body, &r); err != nil {
			return err
		}
		if r.Time.Before(since) {
			return nil
		}
		return fn(s, r)
	})
}

// Export writes the records at or after since as JSON lines.
func (l *Log) Export(ctx context.Context, since time.Time, w io.Writer) error {
	return l.eachSince(ctx, since, func(s Stored, _ Record) error {
		_, err := fmt.Fprintf(w, "%s\n", s.Body)
		return err
	})
}

// Records returns the records at or after since, at most limit of them
// (the oldest first), as written.
func (l *Log) Records(ctx context.Context, since time.Time, limit int) ([]Record, error) {
	var out []Record
	errFull := errors.New("full")
	err := l.eachSince(ctx, since, func(_ Stored, r Record) error {
		if len(out) == limit {
			return errFull
		}
		out = append(out, r)
		return nil
	})
	if err != nil && err != errFull {
		return nil, err
	}
	return out, nil
}
