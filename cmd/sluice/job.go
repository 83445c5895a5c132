package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/sandbox"
	"github.com/sluicehq/sluice/server"
	"github.com/sluicehq/sluice/server/client"
)

func newJobCmd() *cobra.Command {
	var sf serverFlags
	c := &cobra.Command{
		Use:   "job",
		Short: "Jobs: analysis code run in the sandbox under a scenario",
		Long: `A job runs a code bundle in an allow-listed image under an active scenario. A dev
job reads the scenario's dev extract (sampled, masked): its submitter reads its
outputs and logs. A prod job runs the same code (by digest; it must have run
successfully in dev first) over the prod views: its outputs and logs go to
quarantine and leave only through egress. Admission is the platform's policy.

Exit codes of submit --wait/--follow and wait: 0 the job exited 0; 1 it ran
and failed (non-zero exit, timeout, oom, output_limit, stopped); 4 it could not
run; 2 usage errors; 1 when admission denied it.`,
	}
	sf.register(c)
	c.AddCommand(newJobSubmitCmd(&sf), newJobWaitCmd(&sf), newJobLogsCmd(&sf), newJobOutputCmd(&sf), newJobListCmd(&sf), newJobShowCmd(&sf), newJobCancelCmd(&sf))
	return c
}

func newJobSubmitCmd(sf *serverFlags) *cobra.Command {
	var (
		req                        client.JobRequest
		code, timeout, memory, out string
		wait, follow               bool
	)
	c := &cobra.Command{
		Use:   "submit --scenario ID --kind dev|prod --image NAME --code DIR|FILE.tar.gz [limits] [--wait|--follow] -- CMD...",
		Short: "Upload a code bundle and submit a job (scientist)",
		Example: `  sluice job submit --scenario scn_… --kind dev --image python --code ./analysis --follow -- python3 /code/main.py
  sluice job submit --scenario scn_… --kind prod --image python --code ./analysis --wait -- python3 /code/main.py`,
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireFlags(c, "scenario", "kind", "image", "code"); err != nil {
				return err
			}
			if len(args) == 0 {
				return usagef("give the command after --, e.g. -- python3 /code/main.py")
			}
			if req.Kind != "dev" && req.Kind != "prod" {
				return usagef("--kind %q: dev or prod", req.Kind)
			}
			if follow && req.Kind != "dev" {
				return usagef("--follow: only a dev job's logs can be read; a prod job's are quarantined (use --wait)")
			}
			req.Command = args
			req.Limits.Timeout = timeout
			if memory != "" {
				n, err := parseSize(memory)
				if err != nil {
					return usagef("--memory %q: %v", memory, err)
				}
				req.Limits.MemoryBytes = n
			}
			if out != "" {
				n, err := parseSize(out)
				if err != nil {
					return usagef("--output-size %q: %v", out, err)
				}
				req.Limits.OutputBytes = n
			}
			bundle, err := packCode(code)
			if err != nil {
				return err
			}
			cl, err := sf.client()
			if err != nil {
				return err
			}
			cb, err := cl.UploadCode(c.Context(), bytes.NewReader(bundle))
			if err != nil {
				return err
			}
			req.Code = cb.Digest
			j, err := cl.SubmitJob(c.Context(), req)
			if err != nil {
				return err
			}
			if !wait && !follow {
				return sf.print(c.OutOrStdout(), j, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "job %s queued (%s, code %s)\n", j.ID, j.Kind, j.CodeDigest)
				})
			}
			fmt.Fprintf(c.ErrOrStderr(), "job %s queued (%s, code %s)\n", j.ID, j.Kind, j.CodeDigest)
			if follow {
				if err := cl.Logs(c.Context(), j.ID, "stdout", true, c.OutOrStdout()); err != nil {
					return err
				}
			}
			return waitJob(c, sf, cl, j.ID)
		},
	}
	f := c.Flags()
	f.StringVar(&req.Scenario, "scenario", "", "the active scenario the job runs under")
	f.StringVar(&req.Kind, "kind", "dev", "dev (the dev extract; outputs readable) or prod (the prod views; outputs quarantined)")
	f.StringVar(&req.Image, "image", "", "an allow-listed image")
	f.StringVar(&code, "code", "", "the code: a directory or a .tar.gz (uploaded; the job is pinned to its sha256)")
	f.StringVar(&req.Runtime, "runtime", "", "runc (default) or gvisor")
	f.StringVar(&timeout, "timeout", "", "wall-clock limit, e.g. 10m (default: the platform's)")
	f.StringVar(&memory, "memory", "", "memory limit, e.g. 2G")
	f.Float64Var(&req.Limits.CPUs, "cpus", 0, "CPU limit in cores")
	f.Int64Var(&req.Limits.Pids, "pids", 0, "process and thread limit")
	f.StringVar(&out, "output-size", "", "size of /data/out, e.g. 256M")
	f.BoolVar(&wait, "wait", false, "wait for the job to end; the exit code says how it ended")
	f.BoolVar(&follow, "follow", false, "stream a dev job's stdout until it ends, then exit as --wait does")
	return c
}

// packCode reads a .tar.gz as it is, or packs a directory into one
// (regular files and directories only; the server checks the limits).
func packCode(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usagef("--code: %v", err)
	}
	if !fi.IsDir() {
		if !strings.HasSuffix(path, ".tar.gz") && !strings.HasSuffix(path, ".tgz") {
			return nil, usagef("--code %s: give a directory or a .tar.gz", path)
		}
		return os.ReadFile(path)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		if rel == "." {
			return nil
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return usagef("--code %s: %s is not a regular file or directory", path, rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name, h.Uname, h.Gname, h.Uid, h.Gid = filepath.ToSlash(rel), "", "", 0, 0
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// waitJob polls a job until it ends, prints it, and returns the exit the
// job's end calls for.
func waitJob(c *cobra.Command, sf *serverFlags, cl *client.Client, id string) error {
	for {
		j, err := cl.Job(c.Context(), id)
		if err != nil {
			return err
		}
		if sandbox.JobState(j.State).Final() {
			if err := sf.print(c.OutOrStdout(), j, func(w *tabwriter.Writer) { printJob(w, j) }); err != nil {
				return err
			}
			return jobExit(j)
		}
		select {
		case <-c.Context().Done():
			return c.Context().Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// jobExit is the exit code a job's end calls for (as sluice sandbox run's).
func jobExit(j server.JobView) error {
	switch {
	case j.State == string(sandbox.JobFailed):
		return exitError{code: exitFailed, msg: fmt.Sprintf("job %s could not run: %s", j.ID, j.Error)}
	case j.Reason == string(sandbox.ReasonExited) && j.ExitCode != nil && *j.ExitCode == 0:
		return nil
	}
	code := -1
	if j.ExitCode != nil {
		code = *j.ExitCode
	}
	return exitError{code: exitNo, msg: fmt.Sprintf("job %s ended %s (exit code %d)", j.ID, j.Reason, code)}
}

func printJob(w *tabwriter.Writer, j server.JobView) {
	fmt.Fprintf(w, "job\t%s\n", j.ID)
	fmt.Fprintf(w, "scenario\t%s\n", j.ScenarioID)
	fmt.Fprintf(w, "kind\t%s\n", j.Kind)
	fmt.Fprintf(w, "image\t%s (%s)\n", j.Image, j.ImageDigest)
	fmt.Fprintf(w, "code\t%s\n", j.CodeDigest)
	fmt.Fprintf(w, "command\t%s\n", strings.Join(j.Command, " "))
	fmt.Fprintf(w, "state\t%s\n", j.State)
	if j.Reason != "" {
		fmt.Fprintf(w, "reason\t%s\n", j.Reason)
	}
	if j.ExitCode != nil {
		fmt.Fprintf(w, "exit code\t%d\n", *j.ExitCode)
	}
	if j.Error != "" {
		fmt.Fprintf(w, "error\t%s\n", j.Error)
	}
	for _, o := range j.Outputs {
		where := "readable by the submitter"
		if j.Quarantined {
			where = "quarantined"
		}
		fmt.Fprintf(w, "output\t%s (%s, sha256 %s, %s)\n", o.Path, sandbox.FormatBytes(o.Size), o.SHA256, where)
	}
	for _, r := range j.Rejected {
		fmt.Fprintf(w, "rejected\t%s: %s\n", r.Path, r.Reason)
	}
}

func newJobWaitCmd(sf *serverFlags) *cobra.Command {
	return &cobra.Command{
		Use: "wait ID", Short: "Wait for a job to end; the exit code says how it ended", Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := sf.client()
			if err != nil {
				return err
			}
			return waitJob(c, sf, cl, args[0])
		},
	}
}

func newJobLogsCmd(sf *serverFlags) *cobra.Command {
	var stderr, follow bool
	c := &cobra.Command{
		Use: "logs ID [--stderr] [--follow]", Short: "Print a dev job's stdout (or stderr); prod logs are quarantined", Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := sf.client()
			if err != nil {
				return err
			}
			stream := "stdout"
			if stderr {
				stream = "stderr"
			}
			return cl.Logs(c.Context(), args[0], stream, follow, c.OutOrStdout())
		},
	}
	c.Flags().BoolVar(&stderr, "stderr", false, "print stderr instead of stdout")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the job prints until it ends")
	return c
}

func newJobOutputCmd(sf *serverFlags) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use: "output ID PATH --out FILE", Short: "Download one output of a dev job (its submitter)", Args: exactArgs(2, "a job ID and an output's path"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireFlags(c, "out"); err != nil {
				return err
			}
			cl, err := sf.client()
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return usagef("--out: %v (an existing file is never overwritten)", err)
			}
			if err := cl.Output(c.Context(), args[0], args[1], f); err != nil {
				f.Close()
				os.Remove(out)
				return err
			}
			return f.Close()
		},
	}
	c.Flags().StringVar(&out, "out", "", "the file to write (must not exist)")
	return c
}

func newJobListCmd(sf *serverFlags) *cobra.Command {
	var scenario, state string
	c := &cobra.Command{
		Use: "list [--scenario ID] [--state STATE]", Short: "List the jobs you may see", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return ask(c, sf, func(ctx context.Context, cl *client.Client) ([]server.JobView, error) {
				return cl.ListJobs(ctx, scenario, state)
			},
				func(w *tabwriter.Writer, jobs []server.JobView) {
					fmt.Fprintln(w, "ID\tSCENARIO\tKIND\tIMAGE\tSTATE\tREASON\tCREATED")
					for _, j := range jobs {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.ScenarioID, j.Kind, j.Image, j.State, j.Reason, j.CreatedAt.Format("2006-01-02 15:04:05"))
					}
				})
		},
	}
	c.Flags().StringVar(&scenario, "scenario", "", "only this scenario's jobs")
	c.Flags().StringVar(&state, "state", "", "only jobs in this state (queued, preparing, running, finishing, done, failed)")
	return c
}

func newJobShowCmd(sf *serverFlags) *cobra.Command {
	return &cobra.Command{
		Use: "show ID", Short: "Show a job: what ran, where it is, its outputs by name and digest", Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return ask(c, sf, func(ctx context.Context, cl *client.Client) (server.JobView, error) { return cl.Job(ctx, args[0]) },
				func(w *tabwriter.Writer, j server.JobView) { printJob(w, j) })
		},
	}
}

func newJobCancelCmd(sf *serverFlags) *cobra.Command {
	return &cobra.Command{
		Use: "cancel ID", Short: "Stop a job (its submitter, or an admin)", Args: exactArgs(1, "a job ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return ask(c, sf, func(ctx context.Context, cl *client.Client) (server.JobView, error) {
				return cl.CancelJob(ctx, args[0])
			},
				func(w *tabwriter.Writer, j server.JobView) { fmt.Fprintf(w, "job %s: stopping (%s)\n", j.ID, j.State) })
		},
	}
}
