package dataset

import (
	"io"
	"os"
)

// File is what a dataset is read from: a file of the filesystem, or an
// object opened some other way — a sealed object of the platform's store,
// decrypted as it is read, so that no plaintext copy is ever written.
// Parquet and Arrow IPC files are read from their ends: a File reads at
// offsets and seeks.
type File interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
}

// Opener opens a named dataset file and says its size. The name is what
// errors call it.
type Opener func(name string) (File, int64, error)

// OpenFile is the default Opener: the local filesystem.
func OpenFile(name string) (File, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// opener is the Opener the options name, the filesystem by default.
func (o Options) opener() Opener {
	if o.Open != nil {
		return o.Open
	}
	return OpenFile
}
