package dataset

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow/memory"
)

// boundedAllocator refuses single allocations above a limit. A corrupt or
// hostile file can declare buffers of hundreds of gigabytes; the decoders
// would try to allocate them and the process would die of it. The refusal
// is a panic that the readers turn into an input error.
type boundedAllocator struct {
	memory.Allocator
	max int
}

// allocLimit is the largest buffer a file of this size may need: generous
// for compressed data, far below what would exhaust the machine.
func allocLimit(fileSize int64) int {
	const floor, ceiling = 16 << 20, 8 << 30
	return int(min(max(64*fileSize, floor), ceiling))
}

func (b *boundedAllocator) Allocate(size int) []byte {
	if size > b.max || size < 0 {
		panic(fmt.Sprintf("a buffer of %d bytes is declared, more than this file can hold", size))
	}
	return b.Allocator.Allocate(size)
}

func (b *boundedAllocator) Reallocate(size int, buf []byte) []byte {
	if size > b.max || size < 0 {
		panic(fmt.Sprintf("a buffer of %d bytes is declared, more than this file can hold", size))
	}
	return b.Allocator.Reallocate(size, buf)
}
