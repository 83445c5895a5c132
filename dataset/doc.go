// Package dataset reads and writes the tabular datasets Sluice works on —
// CSV, Parquet and Arrow IPC (file and stream) — as streams of Arrow record
// batches in bounded memory, profiles them (Inspect) and suggests a column
// classification (Classify) that an administrator confirms before masking.
//
// Every error about the content of a file is an *InputError that names the
// file and the line, column or byte offset at fault; none carries a value
// read from the data, so errors can be logged and shown safely.
package dataset
