// Package egress is the egress gate: it decides whether an output product
// could be turned back into raw data. A product (CSV/TSV, Parquet, Arrow,
// JSON, JSONL, Markdown, text, logs; anything else is a file-type finding)
// is parsed into tables and text, and detectors compare it with an Index
// built once from the raw source and its classification: raw identifier
// values, reversible encodings (digests, base64, hex, reversal), identifier
// patterns, linkable pseudonyms, group sizes recomputed from the source for
// every aggregate key, small cells and zeros, dominance, extremes, row-level
// k-anonymity and l-diversity, affine transforms of raw columns, and
// differences against products already released. Findings carry evidence
// (columns, counts, thresholds), never raw values; the OPA policy in package
// policy turns them into allow, review or deny.
package egress
