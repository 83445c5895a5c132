package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Rules for output paths, relative to /data/out.
const (
	// MaxOutputPath is the longest output path collected, in bytes.
	MaxOutputPath = 1024
	// MaxOutputDepth is the deepest output path collected, in directories.
	MaxOutputDepth = 32
)

// Output is a collected output file.
type Output struct {
	Path   string `json:"path"` // relative to /data/out
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Rejected is an output entry that was not collected.
type Rejected struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Collect copies the regular files under src into dst and reports what it
// refused: symbolic links, hard links, devices, FIFOs, sockets, hidden
// files, names that mislead (see unsafeName), paths too long or too deep,
// entries that cannot be read, and files whose apparent size does not fit
// in what is left of limit bytes. Nothing is followed; holes in sparse
// files are not read, and at most limit bytes are read and written in all.
// One bad entry is a rejection, never the end of the collection: only a
// src that cannot be read at all, or a dst that cannot be written, is an
// error. Rejection reasons and errors never name a host path.
func Collect(src, dst string, limit int64) ([]Output, []Rejected, error) {
	c := collector{dst: dst, left: limit}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return nil, nil, hostPathFree(err)
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return c.visit(rel, p, d, err)
	})
	if err != nil {
		return c.outs, c.rejected, hostPathFree(err)
	}
	return c.outs, c.rejected, nil
}

type collector struct {
	dst      string
	left     int64 // bytes of the limit not yet used
	outs     []Output
	rejected []Rejected
}

func (c *collector) visit(rel, p string, d fs.DirEntry, walkErr error) error {
	reject := func(reason string) error {
		c.rejected = append(c.rejected, Rejected{Path: safeName(rel), Reason: reason})
		if d != nil && d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	}
	if walkErr != nil {
		return reject("cannot be read: " + errnoText(walkErr))
	}
	// Parents are visited first: checking this entry's own name suffices.
	if why := unsafeName(d.Name()); why != "" {
		return reject(why)
	}
	switch {
	case !filepath.IsLocal(rel):
		return reject("name escapes the output directory")
	case len(rel) > MaxOutputPath:
		return reject(fmt.Sprintf("path longer than %d bytes", MaxOutputPath))
	case strings.Count(rel, string(filepath.Separator)) >= MaxOutputDepth:
		return reject(fmt.Sprintf("path deeper than %d directories", MaxOutputDepth))
	}
	switch t := d.Type(); {
	case d.IsDir():
		return nil
	case t&fs.ModeSymlink != 0:
		return reject("symbolic link")
	case t&fs.ModeDevice != 0 || t&fs.ModeCharDevice != 0:
		return reject("device")
	case t&fs.ModeNamedPipe != 0:
		return reject("named pipe (FIFO)")
	case t&fs.ModeSocket != 0:
		return reject("socket")
	case !t.IsRegular():
		return reject("not a regular file")
	}
	o, why, err := c.copy(p, filepath.Join(c.dst, rel))
	if err != nil {
		return err
	}
	if why != "" {
		return reject(why)
	}
	o.Path = rel
	c.outs = append(c.outs, o)
	return nil
}

// copy copies one regular file without following links, hashing it. It
// reads only the data the file holds up to its apparent size, which must
// fit in what is left of the limit.
func (c *collector) copy(src, dst string) (Output, string, error) {
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Output{}, "cannot open: " + errnoText(err), nil
	}
	f := os.NewFile(uintptr(fd), "output")
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Output{}, "cannot read: " + errnoText(err), nil
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return Output{}, "not a regular file", nil
	case st.Nlink > 1:
		return Output{}, "hard link", nil
	case st.Size > c.left:
		return Output{}, fmt.Sprintf("apparent size %s is over the output size limit (%s left)", FormatBytes(st.Size), FormatBytes(c.left)), nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return Output{}, "", err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return Output{}, "", err
	}
	h := sha256.New()
	err = copySparse(out, f, st.Size, h)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return Output{}, "", err
	}
	c.left -= st.Size
	return Output{Size: st.Size, SHA256: hex.EncodeToString(h.Sum(nil))}, "", nil
}

// copySparse copies the first size bytes of src to dst, reading only the
// data extents (SEEK_DATA/SEEK_HOLE) and leaving holes as holes; h sees
// every byte, zeros included.
func copySparse(dst, src *os.File, size int64, h hash.Hash) error {
	fd := int(src.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO): // only a hole is left
			data = size
		case err != nil: // no hole support: all data
			data = off
		}
		data = min(data, size)
		if err := hashZeros(h, data-off); err != nil {
			return err
		}
		if data == size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		hole = min(hole, size)
		if _, err := dst.Seek(data, io.SeekStart); err != nil {
			return err
		}
		n, err := io.Copy(io.MultiWriter(dst, h), io.NewSectionReader(src, data, hole-data))
		if err != nil {
			return err
		}
		if n != hole-data {
			return errors.New("output changed while it was collected")
		}
		off = hole
	}
	return dst.Truncate(size)
}

var zeros [32 << 10]byte

func hashZeros(h hash.Hash, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := h.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// outputOver reports whether a job's output directory broke its cap: the
// tmpfs is full (outputFull) or the apparent sizes of its files, which
// sparse files make larger than the blocks they use, add up to more than
// limit (apparentOver).
func outputOver(dir string, limit int64) bool {
	return outputFull(dir) || apparentOver(dir, limit)
}

// outputFull reports whether the output tmpfs has no space or inodes left.
func outputFull(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Bavail == 0 || st.Ffree == 0
}

// apparentOver walks dir adding up the apparent sizes of its regular files
// and stops as soon as they pass limit.
func apparentOver(dir string, limit int64) bool {
	var total int64
	errOver := errors.New("over")
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			total += fi.Size()
		}
		if total > limit {
			return errOver
		}
		return nil
	})
	return err == errOver
}

// unsafeName says why one component of an output path is refused, or "".
// Refused are names that hide, that mislead people reading a listing, and
// that tools take for something else: bidirectional overrides, zero-width
// and other invisible or format characters, line and paragraph separators,
// control characters, blank names, names with leading or trailing spaces,
// and names that start with '-' (an option to most commands).
func unsafeName(name string) string {
	switch {
	case !utf8.ValidString(name):
		return "name is not valid UTF-8"
	case strings.HasPrefix(name, "."):
		return "hidden file"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "name contains control characters"
	case strings.IndexFunc(name, isInvisible) >= 0:
		return "name contains invisible, bidirectional or separator characters"
	case strings.TrimFunc(name, unicode.IsSpace) == "":
		return "name is blank"
	case strings.TrimFunc(name, unicode.IsSpace) != name:
		return "name starts or ends with white space"
	case strings.HasPrefix(name, "-"):
		return "name starts with '-'"
	}
	return ""
}

// isInvisible: a rune that is not a visible character or a plain space —
// format characters (Cf: bidirectional controls, zero-width joiners,
// U+FEFF), line and paragraph separators, private-use, surrogate and
// unassigned code points.
func isInvisible(r rune) bool {
	return r != ' ' && !unicode.IsGraphic(r)
}

// safeName makes a refused name printable: quoted, with every rune that is
// not plainly visible escaped, and cut to a reasonable length.
func safeName(name string) string {
	const max = 256
	if len(name) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + "…"
	}
	if utf8.ValidString(name) && strings.IndexFunc(name, isInvisible) < 0 {
		return name
	}
	return fmt.Sprintf("%+q", name)
}

// errnoText is an error without the paths an *fs.PathError carries.
func errnoText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return err.Error()
}

// hostPathFree strips the host paths from an I/O error.
func hostPathFree(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(errnoText(err))
}
