// Command sluice is the Sluice secure data-sandbox runtime: register and
// mask datasets, run analysis jobs in isolated containers, and decide what
// may leave through the egress gate.
//
// Exit codes: 0 success; 1 the operation ran and said no (a denied product);
// 2 usage or input error; 3 a product needs human review; 4 any other
// failure (I/O, environment).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/containerd/containerd/namespaces"
	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/errcode"
	"github.com/sluicehq/sluice/server/client"
)

// Exit codes (internal/errcode keeps the one table of them).
const (
	exitOK     = errcode.ExitOK
	exitNo     = errcode.ExitNo
	exitUsage  = errcode.ExitUsage
	exitReview = errcode.ExitReview
	exitFailed = errcode.ExitFailed
)

// usageError marks a mistake in the command line: its class is
// errcode.ErrUsage, and it still is what it wraps.
type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() []error { return []error{errcode.ErrUsage, e.err} }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitError carries a specific exit code (for "the operation said no").
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "sluice:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "sluice:", err)
	return exitCode(err)
}

// exitCode is the exit code of an error's class (internal/errcode), or of
// the stable code a server answered with.
func exitCode(err error) int {
	if strings.HasPrefix(err.Error(), "unknown command") { // cobra's own usage error
		return exitUsage
	}
	if code, ok := apiExitCode(err); ok {
		return code
	}
	if errors.Is(err, client.ErrUnreachable) {
		return exitFailed
	}
	return errcode.Of(err).Exit
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Secure data sandbox: data may be used, not seen",
		Long: `Sluice runs analysts' code over masked datasets in isolated containers and lets
nothing leave that could be turned back into raw data (原始数据不出域、数据可用不可见).

Exit codes: 0 success; 1 the operation ran and said no; 2 usage or input error;
3 a product needs human review; 4 any other failure.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(newDatasetCmd(), newDemoDataCmd(), newSandboxCmd(), newImageCmd(), newEgressCmd(), newPolicyCmd(), newServerCmd(), newAuditCmd(), newTenantCmd(), newUserCmd(), newScenarioCmd(), newJobCmd(), newAlertCmd(), newContextCmd())
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s (see '%s --help')", c.CommandPath(), what, c.CommandPath())
		}
		return nil
	}
}

// requireFlags reports missing required flags as a usage error.
func requireFlags(c *cobra.Command, names ...string) error {
	for _, n := range names {
		if !c.Flags().Changed(n) {
			return usagef("--%s is required (see '%s --help')", n, c.CommandPath())
		}
	}
	return nil
}

// outputFormat validates the -o flag.
func outputFormat(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return usagef("-o %q: use one of %v", v, allowed)
}

// namespaced returns the command's context in a containerd namespace.
func namespaced(c *cobra.Command, ns string) context.Context {
	return namespaces.WithNamespace(c.Context(), ns)
}
