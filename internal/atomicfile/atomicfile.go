// Package atomicfile writes files that appear whole or not at all: the
// content goes to a hidden temporary file beside the destination, which is
// synced and renamed into place only when everything succeeded.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write creates or replaces path with what write produces, with mode perm.
// On any error nothing is left at path (an older file stays as it was) and
// the temporary file is removed.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	return writeFile(path, perm, write, true)
}

// WriteFileUnsynced is WriteFile without the sync: the file still appears
// whole or not at all to every reader and after a crash of the process,
// but a power loss may lose it. For records that are rewritten often and
// whose loss a restart handles.
func WriteFileUnsynced(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, false)
}

func writeFile(path string, perm os.FileMode, write func(io.Writer) error, sync bool) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if sync {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteFile is Write for content already in memory.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
