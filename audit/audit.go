package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Record is one audit event.
type Record struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`            // user ID, or "system"
	Role      string    `json:"role,omitempty"`   // the actor's role
	Tenant    string    `json:"tenant,omitempty"` // the actor's tenant
	Action    string    `json:"action"`           // e.g. "create-tenant"
	Resource  string    `json:"resource,omitempty"`
	Result    string    `json:"result"` // "attempt", "ok", or an error code
	RequestID string    `json:"request_id,omitempty"`
	Prev      string    `json:"prev"` // hex hash of the record before ("" for the first)
}

// body is the canonical encoding a record's hash covers.
func (r *Record) body() ([]byte, error) { return json.Marshal(r) }

// hash is the chain hash of a record body.
func hash(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// Checkpoint is the chain head at Seq, signed.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	Signature []byte    `json:"signature"`
}

// signed is what a checkpoint's signature covers.
func (c *Checkpoint) signed() []byte {
	var b bytes.Buffer
	b.WriteString("sluice-audit-checkpoint\x00")
	binary.Write(&b, binary.BigEndian, c.Seq)
	b.WriteString(c.Hash)
	binary.Write(&b, binary.BigEndian, c.Time.UnixNano())
	return b.Bytes()
}

// Every is how many records lie between two checkpoints: every record is
// covered by a signature at most Every records later.
const Every = 64

// ErrTampered: the trail is not what was written.
var ErrTampered = errors.New("audit trail tampered with")

// Problem names the first record (or checkpoint) at fault.
type Problem struct {
	Seq    int64
	Reason string
}

func (p *Problem) Error() string { return fmt.Sprintf("record %d: %s", p.Seq, p.Reason) }
func (p *Problem) Unwrap() error { return ErrTampered }

// Stored is a record as a store holds it: the canonical body and its hash.
type Stored struct {
	Seq  int64
	Body []byte
	Hash string
}

// Verify checks a trail: every record's hash is the hash of its body, every
// body names the hash before it and its own place, the sequence has no gap,
// and every checkpoint that must exist (each Every records, and the last
// one) exists and is signed by pub over the chain as it stands. It returns
// the number of records checked, or a *Problem naming the first at fault.
func Verify(ctx context.Context, recs func(func(Stored) error) error, checkpoints []Checkpoint, pub ed25519.PublicKey) (int64, error) {
	byseq := map[int64]Checkpoint{}
	for _, c := range checkpoints {
		byseq[c.Seq] = c
	}
	var n, lastGood int64
	prev := ""
	err := recs(func(s Stored) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n++
		if s.Seq != n {
			return &Problem{n, fmt.Sprintf("the next record is numbered %d: records were deleted, inserted or reordered", s.Seq)}
		}
		if hash(s.Body) != s.Hash {
			return &Problem{n, "its content does not match its hash: it was edited"}
		}
		var r Record
		if err := json.Unmarshal(s.Body, &r); err != nil {
			return &Problem{n, "it cannot be read"}
		}
		if r.Seq != n || r.Prev != prev {
			return &Problem{n, "it does not follow the record before it: records were deleted, inserted or reordered"}
		}
		prev = s.Hash
		if c, ok := byseq[n]; ok {
			if c.Hash != s.Hash || !ed25519.Verify(pub, c.signed(), c.Signature) {
				return &Problem{n, fmt.Sprintf("the signed checkpoint at %d does not match the chain: one of records %d to %d was changed and the chain rewritten", n, lastGood+1, n)}
			}
			lastGood = n
		} else if n%Every == 0 {
			return &Problem{n, "the signed checkpoint that must be here is missing"}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	// The records after the last checkpoint are at most Every-1: a trail
	// cut short keeps its checkpoints, which then lie beyond its end.
	for _, c := range checkpoints {
		if c.Seq > n {
			return n, &Problem{n + 1, fmt.Sprintf("a signed checkpoint covers record %d, which is gone: the trail was cut short", c.Seq)}
		}
	}
	return n, nil
}
