package sandbox

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Paths inside the job container.
const (
	InputDir  = "/data/in"
	OutputDir = "/data/out"
	CodeDir   = "/code"
	TmpDir    = "/tmp"
	ShmDir    = "/dev/shm"
)

// Runtime names the OCI runtime a job runs under.
type Runtime string

// Runtimes.
const (
	RuntimeRunc   Runtime = "runc"
	RuntimeGVisor Runtime = "gvisor"
)

// Limits bound a job's resources. Zero fields take the configured default.
type Limits struct {
	Memory      int64         `json:"memory_bytes"` // memory and memory+swap (no swap)
	CPUs        float64       `json:"cpus"`         // CFS quota in cores
	Pids        int64         `json:"pids"`         // processes and threads
	Timeout     time.Duration `json:"timeout"`      // wall clock, from start
	OutputBytes int64         `json:"output_bytes"` // size of /data/out
	LogBytes    int64         `json:"log_bytes"`    // each of stdout and stderr
	TmpBytes    int64         `json:"tmp_bytes"`    // size of /tmp
	ShmBytes    int64         `json:"shm_bytes"`    // size of /dev/shm
}

// GVisorMinPids is the default pids limit of gVisor jobs: the sandbox's own
// threads count against it.
const GVisorMinPids = 1024

// DefaultLimits apply when a job asks for nothing.
var DefaultLimits = Limits{
	Memory:      1 << 30,
	CPUs:        1,
	Pids:        256,
	Timeout:     30 * time.Minute,
	OutputBytes: 256 << 20,
	LogBytes:    16 << 20,
	TmpBytes:    256 << 20,
	ShmBytes:    64 << 20,
}

// MaxLimits are the ceilings no job may exceed unless the operator's
// configuration raises them.
var MaxLimits = Limits{
	Memory:      16 << 30,
	CPUs:        8,
	Pids:        4096,
	Timeout:     24 * time.Hour,
	OutputBytes: 4 << 30,
	LogBytes:    256 << 20,
	TmpBytes:    4 << 30,
	ShmBytes:    1 << 30,
}

// CodeLimits bound a job's code bundle, counted while it is unpacked or
// copied into the workspace.
type CodeLimits struct {
	Bytes int64 // uncompressed bytes of all files
	Files int   // files and directories
	Depth int   // directories deep
}

// DefaultCodeLimits apply unless the Runner is configured otherwise.
var DefaultCodeLimits = CodeLimits{Bytes: 64 << 20, Files: 10000, Depth: 32}

// Resolve fills zero fields from def and refuses negative values, too
// little memory to start, and values above max.
func (l Limits) Resolve(def, max Limits) (Limits, error) {
	r := l.Fill(def)
	if err := r.check(&max); err != nil {
		return Limits{}, err
	}
	return r, nil
}

// Check refuses negative values and too little memory to start; the
// maximums are left to the caller (the server's admission policy names
// them).
func (l Limits) Check() error { return l.check(nil) }

// Fill fills zero fields from def.
func (l Limits) Fill(def Limits) Limits {
	pick := func(v, d int64) int64 {
		if v == 0 {
			return d
		}
		return v
	}
	r := Limits{
		Memory:      pick(l.Memory, def.Memory),
		Pids:        pick(l.Pids, def.Pids),
		OutputBytes: pick(l.OutputBytes, def.OutputBytes),
		LogBytes:    pick(l.LogBytes, def.LogBytes),
		TmpBytes:    pick(l.TmpBytes, def.TmpBytes),
		ShmBytes:    pick(l.ShmBytes, def.ShmBytes),
		CPUs:        l.CPUs,
		Timeout:     l.Timeout,
	}
	if r.CPUs == 0 {
		r.CPUs = def.CPUs
	}
	if r.Timeout == 0 {
		r.Timeout = def.Timeout
	}
	return r
}

// check refuses negative values, too little memory, and values above max
// when there is one.
func (l Limits) check(max *Limits) error {
	var m Limits
	if max != nil {
		m = *max
	}
	checks := []limitCheck{
		{"memory", float64(l.Memory), float64(m.Memory), l.Memory < 0},
		{"cpus", l.CPUs, m.CPUs, l.CPUs < 0},
		{"pids", float64(l.Pids), float64(m.Pids), l.Pids < 0},
		{"timeout", float64(l.Timeout), float64(m.Timeout), l.Timeout < 0},
		{"output size", float64(l.OutputBytes), float64(m.OutputBytes), l.OutputBytes < 0},
		{"log size", float64(l.LogBytes), float64(m.LogBytes), l.LogBytes < 0},
		{"tmp size", float64(l.TmpBytes), float64(m.TmpBytes), l.TmpBytes < 0},
		{"shm size", float64(l.ShmBytes), float64(m.ShmBytes), l.ShmBytes < 0},
	}
	for _, c := range checks {
		if c.negative {
			return fmt.Errorf("%s must not be negative: %w", c.name, ErrInvalidArgument)
		}
		if max != nil && c.v > c.m {
			return fmt.Errorf("%s %s is above the maximum %s: %w", c.name, c.fmt(c.v), c.fmt(c.m), ErrLimit)
		}
	}
	if l.Memory < 8<<20 {
		return fmt.Errorf("memory %d bytes is below the 8 MiB a job needs to start: %w", l.Memory, ErrInvalidArgument)
	}
	return nil
}

type limitCheck struct {
	name     string
	v, m     float64
	negative bool
}

func (c limitCheck) fmt(x float64) string {
	switch c.name {
	case "timeout":
		return time.Duration(x).String()
	case "cpus", "pids":
		return fmt.Sprintf("%g", x)
	}
	return FormatBytes(int64(x))
}

// FormatBytes prints a byte count with a binary unit.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.3g%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Input is a masked dataset offered to the job at /data/in/<Name>/.
type Input struct {
	Name string `json:"name"`
	Path string `json:"path"` // CSV, Parquet or Arrow IPC file on the host
}

// Job is what to run.
type Job struct {
	ID      string   `json:"id"`
	Image   string   `json:"image"`   // name of an imported image
	Command []string `json:"command"` // argv; empty uses the image's entrypoint and cmd
	Inputs  []Input  `json:"inputs,omitempty"`
	Code    string   `json:"code,omitempty"` // directory or .tar.gz on the host
	Env     []string `json:"env,omitempty"`  // KEY=VALUE, added to the image's
	Runtime Runtime  `json:"runtime"`
	Limits  Limits   `json:"limits"`
}

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{2,62}$`)
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	envPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

// Validate checks a job before anything is created.
func (j *Job) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, ErrInvalidArgument)...)
	}
	if !idPattern.MatchString(j.ID) {
		return bad("job id %q: use 3-63 lower-case letters, digits and '-'", j.ID)
	}
	if j.Image == "" {
		return bad("image is required")
	}
	switch j.Runtime {
	case RuntimeRunc, RuntimeGVisor:
	default:
		return bad("runtime %q: use runc or gvisor", j.Runtime)
	}
	seen := map[string]bool{}
	for _, in := range j.Inputs {
		if !namePattern.MatchString(in.Name) || in.Name == "manifest.json" {
			return bad("input name %q: use letters, digits, '_', '.', '-'", in.Name)
		}
		if seen[in.Name] {
			return bad("input %q given twice", in.Name)
		}
		seen[in.Name] = true
	}
	for _, e := range j.Env {
		if !envPattern.MatchString(e) {
			return bad("environment entry %q: use KEY=VALUE", strings.SplitN(e, "=", 2)[0])
		}
	}
	return nil
}
