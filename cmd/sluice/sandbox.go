package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/sandbox"
	ctrd "github.com/sluicehq/sluice/sandbox/containerd"
)

// runtimeFlags are shared by the commands that talk to containerd.
type runtimeFlags struct {
	address   string
	namespace string
	stateDir  string
	cacheDir  string
	verbose   bool
}

func (f *runtimeFlags) register(c *cobra.Command) {
	p := c.PersistentFlags()
	p.StringVar(&f.address, "containerd-address", ctrd.DefaultAddress, "containerd socket")
	p.StringVar(&f.namespace, "namespace", ctrd.DefaultNamespace, "containerd namespace for sluice's images and jobs")
	p.StringVar(&f.stateDir, "state-dir", "/var/lib/sluice", "where job workspaces live while jobs run")
	p.StringVar(&f.cacheDir, "cache-dir", "/var/cache/sluice", "where built images are cached")
	p.BoolVarP(&f.verbose, "verbose", "v", false, "log what happens to standard error")
}

func (f *runtimeFlags) logger(w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// withExecutor checks the -o value, connects to containerd and runs fn.
func (f *runtimeFlags) withExecutor(c *cobra.Command, output string, fn func(*ctrd.Executor) error) error {
	if err := outputFormat(output, "text", "json"); err != nil {
		return err
	}
	exe, err := f.executor(c)
	if err != nil {
		return err
	}
	defer exe.Close()
	return fn(exe)
}

// executor connects to containerd, enabling gVisor when runsc is installed
// (the one in --cache-dir/bin first).
func (f *runtimeFlags) executor(c *cobra.Command) (*ctrd.Executor, error) {
	opts := []ctrd.Option{ctrd.WithNamespace(f.namespace)}
	if runsc := ctrd.LookRunsc(f.cacheDir); runsc != "" {
		opts = append(opts, ctrd.WithRunsc(runsc, filepath.Join(f.stateDir, "bin")))
	}
	return ctrd.New(c.Context(), f.address, opts...)
}

func newSandboxCmd() *cobra.Command {
	var rf runtimeFlags
	c := &cobra.Command{
		Use:   "sandbox",
		Short: "Run analysis jobs in isolated containers",
		Long: `Runs jobs in containerd containers with no network, a read-only root, a host uid
of their own (non-root, from the job uid range), no capabilities, no-new-privileges,
Sluice's seccomp profile and resource limits. None of it can be switched off. Inputs appear read-only at /data/in/<name>/ (data.arrow, data.parquet,
data.csv and /data/in/manifest.json), code at /code; /data/out is the only way out.`,
	}
	rf.register(c)
	c.AddCommand(newSandboxRunCmd(&rf), newSandboxRecoverCmd(&rf))
	return c
}

func newSandboxRunCmd(rf *runtimeFlags) *cobra.Command {
	var (
		image, code, out, output, runtime, id string
		inputs                                []string
		env                                   []string
		timeout                               time.Duration
		memory, outputSize, tmpSize, logSize  string
		shmSize                               string
		cpus                                  float64
		pids                                  int64
	)
	c := &cobra.Command{
		Use:   "run --image NAME [--input NAME=FILE]... [--code DIR] [--timeout D] [--memory SIZE] [--cpus N] [--runtime runc|gvisor] --out DIR [-o json] -- CMD...",
		Short: "Run one job and collect its outputs into a quarantine directory",
		Long: `Runs one job through the same code the server uses, then collects into --out:
  out/         the regular files the job wrote to /data/out, up to --output-size of
               apparent size in all (links, devices, FIFOs, sockets, hidden files,
               misleading names and files over the cap are refused and reported)
  stdout, stderr  what the job printed (capped)
  result.json  exit code, reason (exited, timeout, oom, output_limit, stopped,
               runtime_error, error), duration, resource use, outputs with size and
               sha256, rejected entries

Exit code: 0 when the job exited 0; 1 when it ran and failed (non-zero exit,
timeout, oom, output_limit); 2 for usage and input errors (a code bundle over its
limits, say); 4 when it could not run or its runtime failed (runtime_error).
Limits default to the platform defaults and can never exceed the maximums.`,
		Example: `  sluice sandbox run --image busybox --out /tmp/q1 -- sh -c 'echo hi > /data/out/hello.txt'
  sluice sandbox run --image python --input residents=masked.arrow --code ./analysis \
      --timeout 10m --memory 2G --out /tmp/q2 -- python3 /code/main.py`,
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireFlags(c, "image", "out"); err != nil {
				return err
			}
			if err := outputFormat(output, "text", "json"); err != nil {
				return err
			}
			job := sandbox.Job{ID: id, Image: image, Command: args, Code: code, Env: env, Runtime: sandbox.Runtime(runtime)}
			if job.ID == "" {
				job.ID = newJobID()
			}
			for _, in := range inputs {
				name, file, ok := strings.Cut(in, "=")
				if !ok || name == "" || file == "" {
					return usagef("--input %q: use NAME=FILE", in)
				}
				if _, err := os.Stat(file); err != nil {
					return usagef("--input %s: %v", name, err)
				}
				job.Inputs = append(job.Inputs, sandbox.Input{Name: name, Path: file})
			}
			var err error
			for _, s := range []struct {
				flag string
				val  string
				dst  *int64
			}{{"memory", memory, &job.Limits.Memory}, {"output-size", outputSize, &job.Limits.OutputBytes}, {"tmp-size", tmpSize, &job.Limits.TmpBytes}, {"shm-size", shmSize, &job.Limits.ShmBytes}, {"log-size", logSize, &job.Limits.LogBytes}} {
				if s.val != "" {
					if *s.dst, err = parseSize(s.val); err != nil {
						return usagef("--%s %q: %v", s.flag, s.val, err)
					}
				}
			}
			job.Limits.Timeout, job.Limits.CPUs, job.Limits.Pids = timeout, cpus, pids
			if code != "" {
				if _, err := os.Stat(code); err != nil {
					return usagef("--code: %v", err)
				}
			}
			exe, err := rf.executor(c)
			if err != nil {
				return err
			}
			defer exe.Close()
			if job.Runtime == sandbox.RuntimeGVisor && !exe.GVisorAvailable() {
				return usagef("--runtime gvisor: runsc is not installed (hack/deps.sh containerd builds it into --cache-dir/bin)")
			}
			runner, err := sandbox.NewRunner(exe, rf.stateDir, sandbox.WithLogger(rf.logger(c.ErrOrStderr())))
			if err != nil {
				return err
			}
			res, err := runner.Run(c.Context(), job, out)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(c.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printResult(c.OutOrStdout(), res, out)
			}
			if res.Reason == sandbox.ReasonError || res.Reason == sandbox.ReasonRuntime {
				return exitError{code: exitFailed, msg: "job " + res.JobID + " could not run: " + res.Error}
			}
			if res.Reason != sandbox.ReasonExited || res.ExitCode != 0 {
				return exitError{code: exitNo}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&image, "image", "", "image name (see 'sluice image list')")
	f.StringArrayVar(&inputs, "input", nil, "masked dataset offered at /data/in/NAME/ (NAME=FILE; repeatable)")
	f.StringVar(&code, "code", "", "code directory or .tar.gz, mounted read-only at /code")
	f.StringArrayVar(&env, "env", nil, "extra environment variable KEY=VALUE (repeatable)")
	f.DurationVar(&timeout, "timeout", 0, "wall-clock limit (default "+sandbox.DefaultLimits.Timeout.String()+")")
	f.StringVar(&memory, "memory", "", "memory limit, e.g. 512M, 2G (default "+sandbox.FormatBytes(sandbox.DefaultLimits.Memory)+")")
	f.Float64Var(&cpus, "cpus", 0, "CPU limit in cores (default "+strconv.FormatFloat(sandbox.DefaultLimits.CPUs, 'g', -1, 64)+")")
	f.Int64Var(&pids, "pids", 0, "process and thread limit (default "+strconv.FormatInt(sandbox.DefaultLimits.Pids, 10)+")")
	f.StringVar(&outputSize, "output-size", "", "size cap of /data/out (default "+sandbox.FormatBytes(sandbox.DefaultLimits.OutputBytes)+")")
	f.StringVar(&tmpSize, "tmp-size", "", "size of the /tmp tmpfs (default "+sandbox.FormatBytes(sandbox.DefaultLimits.TmpBytes)+")")
	f.StringVar(&shmSize, "shm-size", "", "size of the /dev/shm tmpfs (default "+sandbox.FormatBytes(sandbox.DefaultLimits.ShmBytes)+")")
	f.StringVar(&logSize, "log-size", "", "cap on each of stdout and stderr (default "+sandbox.FormatBytes(sandbox.DefaultLimits.LogBytes)+")")
	f.StringVar(&runtime, "runtime", "runc", "OCI runtime: runc or gvisor")
	f.StringVar(&out, "out", "", "quarantine directory to create for the outputs, logs and result")
	f.StringVar(&id, "id", "", "job ID (default: random)")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}

func newSandboxRecoverCmd(rf *runtimeFlags) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "recover",
		Short: "Finish the jobs an interrupted sluice left behind",
		Long: `Finds every job container and workspace left by a sluice process that died:
running jobs within their deadline are reattached and waited for, jobs past it are
stopped (reason timeout), finished ones are collected into their quarantine
directory; then containers, tasks, snapshots and workspaces are removed.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return rf.withExecutor(c, output, func(exe *ctrd.Executor) error {
				runner, err := sandbox.NewRunner(exe, rf.stateDir, sandbox.WithLogger(rf.logger(c.ErrOrStderr())))
				if err != nil {
					return err
				}
				results, err := runner.Recover(c.Context())
				if output == "json" {
					if results == nil {
						results = []*sandbox.Result{}
					}
					if werr := writeJSON(c.OutOrStdout(), results); werr != nil {
						return werr
					}
				} else {
					if len(results) == 0 {
						fmt.Fprintln(c.OutOrStdout(), "nothing to recover")
					}
					for _, r := range results {
						printResult(c.OutOrStdout(), r, "")
					}
				}
				return err
			})
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}

// printResult prints a result; the log files are named inside quarantine
// when it is known.
func printResult(w io.Writer, r *sandbox.Result, quarantine string) {
	fmt.Fprintf(w, "job %s: %s, exit code %d, %d ms", r.JobID, r.Reason, r.ExitCode, r.DurationMS)
	if r.Recovered {
		fmt.Fprint(w, " (recovered)")
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
	if r.Usage.MaxMemoryBytes > 0 {
		fmt.Fprintf(w, "  peak memory %s, CPU %v\n", sandbox.FormatBytes(int64(r.Usage.MaxMemoryBytes)), time.Duration(r.Usage.CPUNanos).Round(time.Millisecond))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, o := range r.Outputs {
		fmt.Fprintf(tw, "  output\t%s\t%d bytes\tsha256:%s\n", o.Path, o.Size, o.SHA256)
	}
	for _, rj := range r.Rejected {
		fmt.Fprintf(tw, "  rejected\t%s\t%s\t\n", rj.Path, rj.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "  stdout %s\n  stderr %s\n", filepath.Join(quarantine, r.Stdout), filepath.Join(quarantine, r.Stderr))
	if r.LogsTruncated {
		fmt.Fprintln(w, "  (logs truncated at the log size limit)")
	}
}

func newJobID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "job-" + hex.EncodeToString(b)
}

// parseSize reads sizes like 512M, 2G, 1GiB, 1048576.
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		case 'T':
			mult, t = 1<<40, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, errors.New("use a positive size such as 512M or 2G")
	}
	return int64(v * float64(mult)), nil
}
