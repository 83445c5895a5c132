// Package audit is the tamper-evident trail of everything done on the
// platform (R5, R6): append-only records in a hash chain, whose head is
// signed with the server's Ed25519 key at regular checkpoints, so that
// someone who can rewrite the whole store still cannot forge a consistent
// trail. Verify recomputes the chain and names the first bad record. The
// operational log is not the audit trail; records hold no data values.
package audit
