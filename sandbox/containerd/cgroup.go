package containerd

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sluicehq/sluice/sandbox"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupReading is what a job's cgroup says of it.
type cgroupReading struct {
	usage sandbox.Usage
	oom   bool
}

// readCgroup reads a job's peak memory, CPU time and OOM kills straight
// from its cgroup (containerd puts it at /<namespace>/<id> in every
// hierarchy): three small files instead of a round trip through the shim,
// which reads every controller. ok is false when the files are not there
// (another cgroup layout, or the cgroup is gone); the caller then asks the
// shim.
func readCgroup(ns, id string) (cgroupReading, bool) {
	rel := filepath.Join(ns, id)
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		return readCgroup2(filepath.Join(cgroupRoot, rel))
	}
	var r cgroupReading
	peak, err1 := readUint(filepath.Join(cgroupRoot, "memory", rel, "memory.max_usage_in_bytes"))
	cpu, err2 := readUint(filepath.Join(cgroupRoot, "cpuacct", rel, "cpuacct.usage"))
	kills, err3 := readKeyed(filepath.Join(cgroupRoot, "memory", rel, "memory.oom_control"), "oom_kill")
	if err1 != nil || err2 != nil || err3 != nil {
		return r, false
	}
	r.usage = sandbox.Usage{MaxMemoryBytes: peak, CPUNanos: cpu}
	r.oom = kills > 0
	return r, true
}

func readCgroup2(dir string) (cgroupReading, bool) {
	var r cgroupReading
	peak, err1 := readUint(filepath.Join(dir, "memory.peak"))
	usec, err2 := readKeyed(filepath.Join(dir, "cpu.stat"), "usage_usec")
	kills, err3 := readKeyed(filepath.Join(dir, "memory.events"), "oom_kill")
	if err1 != nil || err2 != nil || err3 != nil {
		return r, false
	}
	r.usage = sandbox.Usage{MaxMemoryBytes: peak, CPUNanos: usec * 1000}
	r.oom = kills > 0
	return r, true
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
}

// readKeyed reads the value of key from a file of "key value" lines.
func readKeyed(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := bytes.Cut(sc.Bytes(), []byte{' '}); ok && string(k) == key {
			return strconv.ParseUint(string(v), 10, 64)
		}
	}
	return 0, os.ErrNotExist
}
