package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"

	"github.com/minio/sio"

	"github.com/sluicehq/sluice/internal/atomicfile"
)

// Errors.
var (
	ErrNotFound = errors.New("object not found")
	// ErrInvalidArgument: a bad object name or store URL.
	ErrInvalidArgument = errors.New("invalid argument")
)

// Object is an object opened for reading: sequentially, at offsets, or
// from where it seeks to (a dataset.File).
type Object interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
	Size() int64
}

// Store keeps objects by name: written whole or not at all, never changed
// in place.
type Store interface {
	// Put writes the object from r; an existing one is replaced.
	Put(ctx context.Context, name string, r io.Reader) error
	// Get opens an object.
	Get(ctx context.Context, name string) (Object, error)
	// Delete removes an object; a missing one is no error.
	Delete(ctx context.Context, name string) error
}

// Open returns the store a URL names: file:///dir (a directory, made 0700).
func Open(u string) (Store, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("store %q: %v: %w", u, err, ErrInvalidArgument)
	}
	switch p.Scheme {
	case "file":
		return NewLocal(p.Path)
	}
	return nil, fmt.Errorf("store %q: use file:///DIR (s3:// is not built yet): %w", u, ErrInvalidArgument)
}

// Local is a Store in a directory of the local filesystem.
type Local struct{ dir string }

var _ Store = (*Local)(nil)

// NewLocal keeps objects in dir.
func NewLocal(dir string) (*Local, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("store directory %q: give an absolute path: %w", dir, ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Local{dir: dir}, nil
}

var objectName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}(/[a-z0-9][a-z0-9._-]{0,127}){0,7}$`)

func (l *Local) path(name string) (string, error) {
	if !objectName.MatchString(name) {
		return "", fmt.Errorf("object name %q: %w", name, ErrInvalidArgument)
	}
	return filepath.Join(l.dir, filepath.FromSlash(name)), nil
}

// Put writes the object through a temporary file renamed into place.
func (l *Local) Put(_ context.Context, name string, r io.Reader) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// Get opens the object.
func (l *Local) Get(_ context.Context, name string) (Object, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &localObject{File: f, size: fi.Size()}, nil
}

type localObject struct {
	*os.File
	size int64
}

func (o *localObject) Size() int64 { return o.size }

// Delete removes the object.
func (l *Local) Delete(_ context.Context, name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// PutSealed writes r as the object name, sealed with the data key as it
// streams: no plaintext reaches the store.
func PutSealed(ctx context.Context, s Store, name string, key DataKey, r io.Reader) error {
	enc, err := sio.EncryptReader(r, sio.Config{Key: key.k[:]})
	if err != nil {
		return err
	}
	return s.Put(ctx, name, enc)
}

// GetSealed opens a sealed object for reading in plaintext, sequentially or
// at offsets (Parquet and Arrow IPC files are read from their ends); a
// wrong key, or a changed byte, is an error when the data is read.
func GetSealed(ctx context.Context, s Store, name string, key DataKey) (Object, error) {
	o, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	size, err := sio.DecryptedSize(uint64(o.Size()))
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("%s: not a sealed object: %w", name, err)
	}
	at, err := sio.DecryptReaderAt(o, sio.Config{Key: key.k[:]})
	if err != nil {
		o.Close()
		return nil, err
	}
	return &sealedObject{ReaderAt: at, sr: io.NewSectionReader(at, 0, int64(size)), closer: o, size: int64(size)}, nil
}

type sealedObject struct {
	io.ReaderAt
	sr     *io.SectionReader
	closer io.Closer
	size   int64
}

func (o *sealedObject) Read(p []byte) (int, error) { return o.sr.Read(p) }
func (o *sealedObject) Seek(off int64, whence int) (int64, error) {
	return o.sr.Seek(off, whence)
}
func (o *sealedObject) Close() error { return o.closer.Close() }
func (o *sealedObject) Size() int64  { return o.size }

// Opener opens sealed objects of a store, all under one data key, with
// their sizes: a dataset.Opener but for its result type.
func Opener(ctx context.Context, s Store, key DataKey) func(string) (Object, int64, error) {
	return func(name string) (Object, int64, error) {
		o, err := GetSealed(ctx, s, name, key)
		if err != nil {
			return nil, 0, err
		}
		return o, o.Size(), nil
	}
}
