package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/errcode"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/sandbox"
	"github.com/sluicehq/sluice/server"
	"github.com/sluicehq/sluice/server/client"
)

// serverFlags connect a command to a running sluice server.
type serverFlags struct {
	server, tokenFile, context, output string
}

func (f *serverFlags) register(c *cobra.Command) {
	p := c.PersistentFlags()
	p.StringVar(&f.server, "server", "", "server address (default $SLUICE_SERVER, then the context's, else http://127.0.0.1:8420)")
	p.StringVar(&f.tokenFile, "token-file", "", "file holding the API token (default $SLUICE_TOKEN, then the context's)")
	p.StringVar(&f.context, "context", "", "a named context of sluice context (default $SLUICE_CONTEXT, then the current one)")
	p.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
}

// client connects with the flags, the environment, the named or current
// context (sluice context) and the defaults, in that order.
func (f *serverFlags) client() (*client.Client, error) {
	if err := outputFormat(f.output, "text", "json"); err != nil {
		return nil, err
	}
	cfg, path, err := loadClientConfig()
	if err != nil {
		return nil, err
	}
	name := cmp.Or(f.context, os.Getenv("SLUICE_CONTEXT"))
	cc, name, ok := cfg.context(name)
	if !ok && name != "" && (f.context != "" || os.Getenv("SLUICE_CONTEXT") != "") {
		return nil, usagef("--context %q: no such context in %s (sluice context list)", name, path)
	}
	addr := cmp.Or(f.server, os.Getenv("SLUICE_SERVER"), cc.Server, "http://127.0.0.1:8420")
	token := os.Getenv("SLUICE_TOKEN")
	tokenFile, what := f.tokenFile, "--token-file"
	if tokenFile == "" && token == "" && cc.TokenFile != "" {
		tokenFile, what = cc.TokenFile, "context "+name+": token_file"
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, usagef("%s: %v", what, err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, usagef("no API token: set SLUICE_TOKEN, give --token-file, or add a context (sluice context set)")
	}
	c, err := client.New(addr, token)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	return c, nil
}

// ask connects, makes one call and prints its answer: as JSON, or as text
// by the table text writes.
func ask[T any](c *cobra.Command, sf *serverFlags, call func(context.Context, *client.Client) (T, error), text func(*tabwriter.Writer, T)) error {
	cl, err := sf.client()
	if err != nil {
		return err
	}
	v, err := call(c.Context(), cl)
	if err != nil {
		return err
	}
	return sf.print(c.OutOrStdout(), v, func(w *tabwriter.Writer) { text(w, v) })
}

// print writes v as JSON, or text as a table.
func (f *serverFlags) print(w io.Writer, v any, text func(*tabwriter.Writer)) error {
	if f.output == "json" {
		return writeJSON(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

func newTenantCmd() *cobra.Command {
	var sf serverFlags
	c := &cobra.Command{Use: "tenant", Short: "Manage tenants (operators) on a sluice server"}
	sf.register(c)
	c.AddCommand(&cobra.Command{
		Use: "create NAME", Short: "Create a tenant (admin)", Args: exactArgs(1, "a NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := sf.client()
			if err != nil {
				return err
			}
			t, err := cl.CreateTenant(c.Context(), args[0])
			if err != nil {
				return err
			}
			return sf.print(c.OutOrStdout(), t, func(w *tabwriter.Writer) { fmt.Fprintf(w, "tenant %s created: %s\n", t.Name, t.ID) })
		},
	}, &cobra.Command{
		Use: "list", Short: "List the tenants you may see", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := sf.client()
			if err != nil {
				return err
			}
			ts, err := cl.ListTenants(c.Context())
			if err != nil {
				return err
			}
			return sf.print(c.OutOrStdout(), ts, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tNAME\tCREATED")
				for _, t := range ts {
					fmt.Fprintf(w, "%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format("2006-01-02 15:04"))
				}
			})
		},
	})
	return c
}

func newUserCmd() *cobra.Command {
	var sf serverFlags
	c := &cobra.Command{Use: "user", Short: "Manage users and their tokens on a sluice server"}
	sf.register(c)
	var role, tenant, ttl string
	create := &cobra.Command{
		Use:   "create NAME --role ROLE [--tenant ID] [--token-ttl 720h]",
		Short: "Create a user and print their first token (shown this once)",
		Long: `Creates a user with a role: admin, reviewer, security and auditor belong to the
platform (no --tenant); a scientist belongs to a tenant (--tenant). The user's
first API token is printed once: hand it over; it cannot be shown again.`,
		Args: exactArgs(1, "a NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireFlags(c, "role"); err != nil {
				return err
			}
			cl, err := sf.client()
			if err != nil {
				return err
			}
			u, err := cl.CreateUser(c.Context(), args[0], metadata.Role(role), tenant, ttl)
			if err != nil {
				return err
			}
			return sf.print(c.OutOrStdout(), u, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "user %s (%s) created: %s\n", u.User.Name, u.User.Role, u.User.ID)
				fmt.Fprintf(w, "token (shown this once, expires %s):\n%s\n", u.Token.ExpiresAt.Format("2006-01-02"), u.Token.Secret)
			})
		},
	}
	create.Flags().StringVar(&role, "role", "", "admin, scientist, reviewer, security or auditor")
	create.Flags().StringVar(&tenant, "tenant", "", "the scientist's tenant ID")
	create.Flags().StringVar(&ttl, "token-ttl", "", "lifetime of the first token, e.g. 720h (default: the server's)")
	c.AddCommand(create, &cobra.Command{
		Use: "list", Short: "List the users you may see", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := sf.client()
			if err != nil {
				return err
			}
			us, err := cl.ListUsers(c.Context())
			if err != nil {
				return err
			}
			return sf.print(c.OutOrStdout(), us, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tNAME\tROLE\tTENANT\tSTATE")
				for _, u := range us {
					state := "active"
					if u.RevokedAt != nil {
						state = "revoked " + u.RevokedAt.Format("2006-01-02")
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Name, u.Role, u.TenantID, state)
				}
			})
		},
	}, &cobra.Command{
		Use: "revoke ID", Short: "Revoke a user and all their tokens (admin)", Args: exactArgs(1, "a user ID"),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := sf.client()
			if err != nil {
				return err
			}
			u, err := cl.RevokeUser(c.Context(), args[0])
			if err != nil {
				return err
			}
			return sf.print(c.OutOrStdout(), u, func(w *tabwriter.Writer) { fmt.Fprintf(w, "user %s revoked\n", u.Name) })
		},
	})
	return c
}

// apiExitCode is the exit code of an error a server answered with: the
// class of its stable code.
func apiExitCode(err error) (int, bool) {
	var e *client.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return errcode.ByCode(e.Code).Exit, true
}

// newDatasetServerCmds are the dataset commands that talk to a server.
func newDatasetServerCmds() []*cobra.Command {
	var profile, classes string
	var upload bool
	register := &cobra.Command{
		Use:   "register NAME FILE --classes FILE [--upload] [--profile NAME|FILE]",
		Short: "Register a version of a dataset on a server (admin)",
		Long: `Registers FILE as the next version of dataset NAME, with its confirmed
classification (--classes: the classes.yaml that sluice dataset classify wrote and
an administrator checked). Without --upload, FILE is in the server's import
directory (import_dir): absolute, or relative to it; the server reads nothing
outside it. With --upload, FILE is on this machine and is streamed to the server,
which seals it as it arrives (progress on standard error). The server checks
FILE against the classification and keeps it sealed with a data key of its own:
the raw data is never stored unencrypted. Versions are immutable.`,
		Args: exactArgs(2, "NAME and FILE"),
	}
	var sf serverFlags
	register.RunE = func(c *cobra.Command, args []string) (rerr error) {
		if err := requireFlags(c, "classes"); err != nil {
			return err
		}
		cls, err := os.ReadFile(classes)
		if err != nil {
			return usagef("--classes: %v", err)
		}
		if fi, err := os.Stat(profile); err == nil && fi.Mode().IsRegular() {
			b, err := os.ReadFile(profile)
			if err != nil {
				return usagef("--profile: %v", err)
			}
			profile = string(b) // a profile's YAML: the server checks it
		}
		cl, err := sf.client()
		if err != nil {
			return err
		}
		reg := client.Registration{Name: args[0], Path: args[1], Classes: string(cls), Profile: profile}
		if upload {
			f, err := os.Open(args[1])
			if err != nil {
				return usagef("%v", err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			pr := &progressReader{r: f, total: fi.Size(), w: c.ErrOrStderr(), what: "upload " + filepath.Base(args[1])}
			u, err := cl.UploadSource(c.Context(), filepath.Base(args[1]), pr)
			if err != nil {
				return err
			}
			reg.Path, reg.Upload = "", u.ID
			defer func() {
				if rerr != nil {
					fmt.Fprintf(c.ErrOrStderr(), "the upload %s stays on the server: register it again with POST /api/v1/datasets {\"upload\": %q}\n", u.ID, u.ID)
				}
			}()
		}
		v, err := cl.RegisterWithProgress(c.Context(), reg, func(ev server.RegistrationEvent) {
			switch ev.Phase {
			case "check":
				fmt.Fprintf(c.ErrOrStderr(), "checking against the classification: %d rows\n", ev.Done)
			case "seal":
				fmt.Fprintf(c.ErrOrStderr(), "sealing: %s\n", sandbox.FormatBytes(ev.Done))
			}
		})
		if err != nil {
			return err
		}
		return sf.print(c.OutOrStdout(), v, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "dataset %s version %d registered: %s, %d rows, %d bytes, sha256 %s\n", v.Name, v.Version, v.Format, v.Rows, v.Size, v.SHA256)
		})
	}
	register.Flags().StringVar(&classes, "classes", "", "the confirmed classification (classes.yaml)")
	register.Flags().StringVar(&profile, "profile", "", "masking profile of its prod views: prod (default), dev, or a profile's YAML file")
	register.Flags().BoolVar(&upload, "upload", false, "stream FILE from this machine instead of naming a file in the server's import directory")
	sf.register(register)

	var lf serverFlags
	list := &cobra.Command{
		Use: "list", Short: "List the datasets on a server you may see (latest versions)", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := lf.client()
			if err != nil {
				return err
			}
			vs, err := cl.ListDatasets(c.Context())
			if err != nil {
				return err
			}
			return lf.print(c.OutOrStdout(), vs, func(w *tabwriter.Writer) { printVersions(w, vs) })
		},
	}
	lf.register(list)
	var shf serverFlags
	show := &cobra.Command{
		Use: "show NAME", Short: "Show every version of a dataset on a server", Args: exactArgs(1, "a NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := shf.client()
			if err != nil {
				return err
			}
			vs, err := cl.DatasetVersions(c.Context(), args[0])
			if err != nil {
				return err
			}
			return shf.print(c.OutOrStdout(), vs, func(w *tabwriter.Writer) {
				printVersions(w, vs)
				if n := len(vs); n > 0 {
					fmt.Fprintln(w, "\nCOLUMN\tTYPE\tCLASS\tGRADE\tPII")
					for _, col := range vs[n-1].Columns {
						fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", col.Name, col.Type, col.Class, col.Grade, col.PII)
					}
				}
			})
		},
	}
	shf.register(show)
	return []*cobra.Command{register, list, show}
}

func printVersions(w io.Writer, vs []metadata.DatasetVersion) {
	fmt.Fprintln(w, "NAME\tVERSION\tFORMAT\tROWS\tBYTES\tREGISTERED")
	for _, v := range vs {
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%s\n", v.Name, v.Version, v.Format, v.Rows, v.Size, v.CreatedAt.Format("2006-01-02 15:04"))
	}
}

func newAlertCmd() *cobra.Command {
	var sf serverFlags
	c := &cobra.Command{Use: "alert", Short: "Alerts: abnormal operations the platform noticed (R6)"}
	sf.register(c)
	var since time.Duration
	list := &cobra.Command{
		Use: "list [--since 24h]", Short: "List the alerts (security, auditor, admin)", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := sf.client()
			if err != nil {
				return err
			}
			var from time.Time
			if since > 0 {
				from = time.Now().Add(-since)
			}
			as, err := cl.ListAlerts(c.Context(), from)
			if err != nil {
				return err
			}
			return sf.print(c.OutOrStdout(), as, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "TIME\tKIND\tSUBJECT\tDETAIL")
				for _, a := range as {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", a.Time.Format("2006-01-02 15:04:05"), a.Kind, a.Subject, a.Detail)
				}
			})
		},
	}
	list.Flags().DurationVar(&since, "since", 0, "only alerts this recent (default: the last 30 days)")
	c.AddCommand(list)
	return c
}

// progressReader reports how much of a file has been read, at every tenth.
type progressReader struct {
	r     io.Reader
	total int64
	n     int64
	shown int64 // tenths reported
	w     io.Writer
	what  string
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.total > 0 {
		if tenth := min(10, p.n*10/p.total); tenth > p.shown {
			p.shown = tenth
			fmt.Fprintf(p.w, "%s: %s of %s (%d%%)\n", p.what, sandbox.FormatBytes(p.n), sandbox.FormatBytes(p.total), tenth*10)
		}
	}
	return n, err
}
