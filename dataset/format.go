package dataset

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is a dataset file format.
type Format string

// Supported formats.
const (
	CSV         Format = "csv"
	Parquet     Format = "parquet"
	ArrowFile   Format = "arrow"  // Arrow IPC file (random access, "ARROW1" magic)
	ArrowStream Format = "arrows" // Arrow IPC stream
)

var (
	magicParquet = []byte("PAR1")
	magicArrow   = []byte("ARROW1")
	// An Arrow IPC stream starts with the continuation marker 0xFFFFFFFF.
	magicStream = []byte{0xff, 0xff, 0xff, 0xff}
)

// FormatFromExt returns the format implied by a file name, for writing.
func FormatFromExt(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return CSV, nil
	case ".parquet", ".pq":
		return Parquet, nil
	case ".arrow", ".ipc", ".feather":
		return ArrowFile, nil
	case ".arrows":
		return ArrowStream, nil
	}
	return "", &InputError{File: path, Offset: -1, Msg: "unknown file extension: use .csv, .parquet, .arrow or .arrows"}
}

// Detect returns the format of an existing file, from its leading bytes and,
// for text, its extension. A file whose extension promises a binary format
// but whose bytes do not carry that format's magic is an input error.
func Detect(path string) (Format, error) {
	f, _, err := detect(path, OpenFile)
	return f, err
}

// detect is Detect through an Opener; it also says the file's size.
func detect(path string, open Opener) (Format, int64, error) {
	f, size, err := open(path)
	if err != nil {
		return "", 0, openErr(path, err)
	}
	defer f.Close()
	head := make([]byte, 8)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", 0, &InputError{File: path, Offset: 0, Msg: "cannot read: " + err.Error()}
	}
	format, err := formatOf(path, head[:n])
	return format, size, err
}

// formatOf decides the format from a file's first bytes and its name.
func formatOf(path string, head []byte) (Format, error) {
	n := len(head)
	if n == 0 {
		return "", &InputError{File: path, Offset: 0, Msg: "file is empty"}
	}
	extFmt, _ := FormatFromExt(path)
	var got Format
	switch {
	case bytes.HasPrefix(head, magicParquet):
		got = Parquet
	case bytes.HasPrefix(head, magicArrow):
		got = ArrowFile
	case bytes.HasPrefix(head, magicStream):
		got = ArrowStream
	}
	switch {
	case got != "" && (extFmt == "" || extFmt == got || (extFmt == ArrowFile && got == ArrowStream)):
		return got, nil
	case got != "":
		return "", &InputError{File: path, Offset: 0, Msg: "extension says " + string(extFmt) + " but the content is " + string(got)}
	case extFmt == Parquet:
		return "", &InputError{File: path, Offset: 0, Msg: "not a Parquet file: no PAR1 magic"}
	case extFmt == ArrowFile || extFmt == ArrowStream:
		return "", &InputError{File: path, Offset: 0, Msg: "not an Arrow IPC file or stream: no ARROW1 magic or stream marker"}
	case extFmt == CSV, extFmt == "" && isTextExt(path):
		return CSV, nil
	}
	return "", &InputError{File: path, Offset: 0, Msg: "unknown format: expected CSV, Parquet or Arrow IPC"}
}

func isTextExt(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv", ".txt", "":
		return true
	}
	return false
}

func openErr(path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return &InputError{File: path, Offset: -1, Msg: "no such file", Err: ErrNotFound}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &InputError{File: path, Offset: -1, Msg: "cannot open: " + err.Error()}
}
